// texts.mjs - the deterministic text set for the GPT-2 tokenizer golden file.
//
// Used by gen_tokenizer_golden.mjs. Three groups of named cases:
//   hand/...     hand-written edge cases for the GPT-2 pre-tokenizer regex
//                ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
//                and the byte-level BPE (Unicode classes, whitespace, specials);
//   random/NNN   seeded random strings mixing ASCII and non-ASCII samples;
//   fortune/...  real English paragraphs from Debian's fortunes package.
// Everything is built from code points (String.fromCodePoint), so no string
// contains a lone surrogate; no Math.random: same output on every run.
import fs from 'node:fs';
import path from 'node:path';

export const RANDOM_SEED = 0x5eed2024;
export const RANDOM_COUNT = 300;
export const FORTUNE_SEED = 0xf0f7e5;
export const FORTUNE_COUNT = 20;
export const FORTUNE_DIR = '/usr/share/games/fortunes';

// mulberry32: small, well-known 32-bit seeded PRNG; returns floats in [0, 1).
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cp = (...cps) => String.fromCodePoint(...cps);
const range = (lo, hi) => { const out = []; for (let c = lo; c <= hi; c++) out.push(cp(c)); return out; };
const chars = (s) => Array.from(s); // split into code points

// ---------------------------------------------------------------------------
// Samples per category (each element is one "atom": a code point or a short
// sequence that belongs together, e.g. an emoji ZWJ sequence).
export const POOL = {
  asciiLower: range(0x61, 0x7a),
  asciiUpper: range(0x41, 0x5a),
  digits: range(0x30, 0x39),
  punct: chars('!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'),
  space: [' ', ' ', ' ', '  ', '\t', '\n', '\r\n', '\n\n', '   '],
  apostrophe: ["'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'LL", "'RE", "''", '\u2019', '\u2019s', '\u2018'],
  unicodeSpace: [cp(0xa0), cp(0x202f), cp(0x3000), cp(0x2003), cp(0x2002), cp(0x2009), cp(0x1680),
    cp(0x2028), cp(0x2029), cp(0x85), cp(0x0b), cp(0x0c), cp(0x1c), cp(0x1d), cp(0x1e), cp(0x1f), cp(0x205f)],
  zeroWidth: [cp(0x200b), cp(0x200c), cp(0x200d), cp(0xfeff), cp(0x200e), cp(0x200f), cp(0x2060), cp(0xad), cp(0x180e), cp(0x061c)],
  combining: [cp(0x301), cp(0x300), cp(0x308), cp(0x327), cp(0x303), cp(0x20dd), cp(0xfe0f), cp(0x36f), cp(0x1ab0), cp(0x1dc0)],
  latinExt: chars('éèêëñçßøåæœŁłŽžǅǈĳﬁﬂÀÉÎÕÜŸªº'),
  greek: chars('αβγδεζηθικλμνξοπρσςτυφχψωΑΒΓΔΩάέήίόύώ'),
  cyrillic: chars('абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЖЯЁІЇЄҐ'),
  cjk: chars('的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切'),
  kana: chars('あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだぢづでどばびぶべぼぱぴぷぺぽっゃゅょアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンー'),
  hangul: chars('가나다라마바사아자차카타파하한국어의는이에서을를습니다안녕하세요감사합') .concat([cp(0x1100), cp(0x1161), cp(0x11a8)]),
  hebrew: chars('אבגדהוזחטיכלמנסעפצקרשתךםןףץשָׁלוֹם'),
  arabic: chars('ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأإةىًٌٍَُِّْ'),
  indic: chars('कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसहािीुूेैोौंःँ्') .concat(chars('กขคงจฉชซญดตถทนบปผพฟมยรลวสหอฮะัาำิีึืุูเแโใไ่้๊๋็์')),
  numberOther: [...chars('٠١٢٣٤٥٦٧٨٩۰۱۲۳०१२३४५६७८९０１２３４５６７８９'), ...chars('ⅠⅡⅢⅣⅫⅽ½¼¾²³¹⁴₀₁①②⑩'), cp(0x1d7d8), cp(0x1d7ec), cp(0x10107)],
  emoji: ['\u{1f600}', '\u{1f44d}', '\u{1f44d}\u{1f3fd}', '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}', '\u{1f1eb}\u{1f1f7}',
    '1\ufe0f\u20e3', '\u2764\ufe0f', '\u{1f525}', '\u{1f389}', '\u{1f914}', '\u{1f3f3}\ufe0f\u200d\u{1f308}', '\u2615', '\u{1f9d1}\u{1f3ff}\u200d\u{1f4bb}'],
  symbols: chars('∑∫√∞≤≥≠≈±×÷∂∇∈∉∀∃⊂⊕→←↔⇒$€¥₹£¢₿₽─│┌┐└┘├┤┬┴┼═║╔╗█▓▒░■□●○◆★☆♠♥♦♣©®™§¶†‡•…—–‰′″«»‹›¿¡'),
  supplementary: [cp(0x1d518), cp(0x1d52b), cp(0x1d526), cp(0x10400), cp(0x10428), cp(0x13000), cp(0x1f004), cp(0x20000), cp(0x2a6d6), cp(0x1d400), cp(0x1d4b6), cp(0x10330)],
  special: [cp(0xfffd), cp(0xfffe), cp(0xffff), cp(0xe000), cp(0xf8ff), cp(0xf0000), cp(0x10fffd), cp(0x378), cp(0x380), cp(0xe0041), cp(0x1fffe), cp(0xfdd0)],
  control: [...range(0x01, 0x08), ...range(0x0e, 0x1b), cp(0x7f), cp(0x80), cp(0x9f), cp(0x1b) + '[0m'],
  endoftext: ['<|endoftext|>', '<|endoftext|>', '<|', '|>', 'endoftext', '<|endoftext', '<|startoftext|>'],
};

const NON_ASCII_CATEGORIES = ['unicodeSpace', 'zeroWidth', 'combining', 'latinExt', 'greek', 'cyrillic', 'cjk', 'kana',
  'hangul', 'hebrew', 'arabic', 'indic', 'numberOther', 'emoji', 'symbols', 'supplementary', 'special', 'control'];
const SCRIPT_CATEGORIES = ['latinExt', 'greek', 'cyrillic', 'cjk', 'kana', 'hangul', 'hebrew', 'arabic', 'indic', 'supplementary'];

// Per-mode category weights for the random strings.
const MODES = {
  english: { asciiLower: 40, asciiUpper: 6, digits: 3, punct: 5, space: 14, apostrophe: 4, latinExt: 1, emoji: 1 },
  mixed: Object.fromEntries(Object.keys(POOL).map((k) => [k, k === 'endoftext' ? 1 : 4])),
  whitespace: { asciiLower: 10, space: 20, unicodeSpace: 12, zeroWidth: 5, punct: 3, digits: 2, control: 2, cjk: 2 },
  unicode: Object.fromEntries([...NON_ASCII_CATEGORIES.map((k) => [k, 5]), ['space', 6], ['asciiLower', 4]]),
  apostrophes: { asciiLower: 20, asciiUpper: 8, apostrophe: 15, space: 8, punct: 3, digits: 2, unicodeSpace: 1 },
};

function makeRng(seed) {
  const next = mulberry32(seed);
  const int = (n) => Math.floor(next() * n);
  const pick = (arr) => arr[int(arr.length)];
  const weighted = (weights) => {
    const keys = Object.keys(weights);
    let total = 0;
    for (const k of keys) total += weights[k];
    let r = next() * total;
    for (const k of keys) { r -= weights[k]; if (r < 0) return k; }
    return keys[keys.length - 1];
  };
  return { next, int, pick, weighted };
}

// Cut a string to at most n code points (never splits a surrogate pair).
const cutCodePoints = (s, n) => Array.from(s).slice(0, n).join('');

function randomString(rng, mode, length) {
  let s = '';
  let n = 0;
  if (mode === 'script') {
    // Words of one script (sometimes two) separated by spaces/punctuation.
    const cats = [rng.pick(SCRIPT_CATEGORIES), rng.pick(SCRIPT_CATEGORIES)];
    while (n < length) {
      const cat = rng.next() < 0.8 ? cats[0] : cats[1];
      const wlen = 1 + rng.int(8);
      for (let i = 0; i < wlen; i++) s += rng.pick(POOL[cat]);
      if (rng.next() < 0.15) s += rng.pick(POOL.combining);
      s += rng.next() < 0.8 ? ' ' : rng.pick([...POOL.punct, ...POOL.unicodeSpace, '\n', '  ']);
      n = Array.from(s).length;
    }
  } else {
    const weights = MODES[mode];
    while (n < length) {
      const cat = rng.weighted(weights);
      // Letters come in word-sized runs so the ?\p{L}+ branch sees real words.
      const run = (cat === 'asciiLower' || cat === 'cjk' || cat === 'cyrillic') ? 1 + rng.int(7) : 1;
      for (let i = 0; i < run; i++) s += rng.pick(POOL[cat]);
      n = Array.from(s).length;
    }
  }
  return cutCodePoints(s, length);
}

export function randomCases(seed = RANDOM_SEED, count = RANDOM_COUNT) {
  const rng = makeRng(seed);
  const modes = ['english', 'mixed', 'whitespace', 'unicode', 'apostrophes', 'script'];
  const out = [];
  for (let i = 0; i < count; i++) {
    const mode = modes[i % modes.length];
    // Lengths 1..200 code points, biased towards short strings.
    const length = 1 + (rng.next() < 0.35 ? rng.int(20) : rng.int(200));
    out.push({ name: `random/${String(i).padStart(3, '0')}-${mode}`, text: randomString(rng, mode, length) });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Hand-written cases.

function zalgo(base, seed, marksPerChar) {
  const rng = makeRng(seed);
  let s = '';
  for (const ch of Array.from(base)) {
    s += ch;
    if (ch === ' ') continue;
    for (let i = 0; i < marksPerChar; i++) s += cp(0x300 + rng.int(0x70));
  }
  return s;
}

const LOREM = 'The quick brown fox jumps over the lazy dog. ';

export function handCases() {
  const C = [];
  const add = (name, text) => C.push({ name: `hand/${name}`, text });

  // Plain English and trivial inputs.
  add('empty', '');
  add('single-letter', 'a');
  add('single-space', ' ');
  add('single-newline', '\n');
  add('plain-english', 'Hello, world! This is a simple sentence in plain English.');
  add('plain-english-paragraph', 'Reinforcement learning from human feedback (RLHF) fine-tunes a language model ' +
    'with a reward model trained on human preference comparisons. It was used for InstructGPT and ChatGPT.');
  add('pangram', LOREM.trim());
  add('capitals', 'HELLO WORLD. ALL CAPS TEXT; MiXeD CaSe TeXt; camelCaseIdentifier PascalCase snake_case');

  // Contractions (ASCII apostrophe).
  add('contractions-lower', "it's can't we're they've I'm you'll he'd");
  add('contractions-each', "'s 't 're 've 'm 'll 'd");
  add('contractions-glued', "'s't're've'm'll'd");
  add('contractions-upper', "IT'S CAN'T WE'RE THEY'VE I'M YOU'LL HE'D 'S 'LL 'T 'RE 'VE 'M 'D");
  add('contractions-mixed-case', "It'S you'Ll We'Re 'Ve 'lL");
  add('contractions-dont-yall', "don't y'all won't shan't o'clock rock'n'roll");
  add('contractions-double-apostrophe', "''s ''t '' x''y");
  add('contractions-triple-apostrophe', "'''");
  add('contractions-many-apostrophes', "''''''''''s '''''''''' ' ' '");
  add('contractions-start-end', "'s at start and at end 's");
  add('contractions-space-before', "John 's book and Mary 'll come");
  add('contractions-digits', "1990's 80's '90s '5");
  add('contractions-non-letter-follow', "'sa 'tb 'rex 'vex 'mm 'llama 'dd 's1 'ş 'ſ");
  add('apostrophe-typographic', 'it\u2019s don\u2019t \u2018quoted\u2019 \u201cdouble\u201d \u2019s \u2019S');
  add('apostrophe-prime-and-backtick', 'it\u02bcs it`s it\u00b4s 5\u2032 6\u2033');
  add('quotes-ascii', '"double" \'single\' "it\'s" \'\'\'triple\'\'\' """doc"""');

  // Digits and numbers.
  add('digits-long', '12345678901234567890');
  add('digits-very-long', '3141592653589793238462643383279502884197169399375105820974944592307816406286208998628034825342117067');
  add('number-pi', '3.14159');
  add('number-thousands', '1,000,000 and 1.000.000 and 1 000 000 and 1\u00a0000\u00a0000');
  add('number-mixed', 'v1.2.3-rc4 0x1F 1e-9 -42 +7 100% $19.99 2024-01-31 12:34:56 #1 No.5');
  add('number-space-runs', ' 1  22   333    4444');
  add('number-arabic-indic', '\u0663\u0664\u0665 \u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669 \u06f1\u06f2\u06f3');
  add('number-devanagari-thai-fullwidth', '\u0967\u0968\u0969 \u0e51\u0e52\u0e53 \uff11\uff12\uff13');
  add('number-roman-numeral-nl', '\u216b Ⅻ chapters \u2160\u2161\u2162 \u217d');
  add('number-fraction-no', '\u00bd cup \u00bc \u00be x\u00b2 + y\u00b3 H\u2082O \u2460\u2461 \u{10107}');
  add('number-math-digits', '\u{1d7d8}\u{1d7d9}\u{1d7da} \u{1d7ec}\u{1d7ed}');
  add('number-letter-adjacent', 'abc123def 123abc abc\u0663\u0664 \u00bdx x\u00bd');

  // Whitespace runs.
  add('ws-many-spaces-before-word', '          word');
  add('ws-spaces-between-words', 'a  b   c    d     e      f');
  add('ws-spaces-at-end', 'text with trailing spaces     ');
  add('ws-only-spaces', '        ');
  add('ws-only-one-space-before-end', 'end ');
  add('ws-tabs', '\tindented\t\ttwo tabs\t\t\tthree\t');
  add('ws-only-tabs', '\t\t\t');
  add('ws-crlf', 'line one\r\nline two\r\n\r\nline four\r\n');
  add('ws-cr-only', 'old mac\rline\r\r');
  add('ws-newlines-triple', 'para one\n\n\npara two');
  add('ws-only-newlines', '\n\n\n');
  add('ws-mixed', '  \t\n  x');
  add('ws-mixed-2', 'a \n b\t \tc \r\n d  \n\n  e');
  add('ws-trailing-newline', 'A line ending with a newline.\n');
  add('ws-leading-newline', '\nstarts with newline');
  add('ws-space-before-punct', 'hello , world ! ok ?  fine  .');
  add('ws-vertical-tab-formfeed', 'a\u000bb\u000cc \u000b \u000c');
  add('ws-1000-spaces-then-x', ' '.repeat(1000) + 'x');
  add('ws-space-newline-space', ' \n \n \n ');

  // Unicode spaces and invisible characters.
  add('nbsp', 'non\u00a0breaking\u00a0space \u00a0 lead and trail\u00a0');
  add('nbsp-runs', 'a\u00a0\u00a0\u00a0b \u00a0\u00a0 c');
  add('narrow-nbsp', '10\u202f000 \u00ab\u202fguillemets\u202f\u00bb');
  add('ideographic-space', '\u65e5\u672c\u3000\u8a9e\u3000\u3000\u30c6\u30b9\u30c8');
  add('em-space', 'em\u2003space en\u2002space thin\u2009space hair\u200aspace');
  add('ogham-space-mmsp', 'ogham\u1680space math\u205fspace');
  add('line-para-separator', 'line\u2028separator para\u2029separator');
  add('next-line-u0085', 'next\u0085line \u0085\u0085');
  add('zero-width-space', 'zero\u200bwidth\u200b\u200bspace \u200b');
  add('zwj', 'zero\u200dwidth\u200djoiner');
  add('zwnj', 'zero\u200cwidth non\u200cjoiner \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645');
  add('bom-start', '\ufeffBOM at start');
  add('bom-middle', 'BOM\ufeffin\ufeff middle \ufeff');
  add('word-joiner-soft-hyphen', 'word\u2060joiner soft\u00adhyphen');
  add('mongolian-vowel-separator', 'a\u180eb \u180e c');
  add('info-separators-1c-1f', 'a\u001cb\u001dc\u001ed\u001fe \u001c \u001f');

  // Combining marks.
  add('combining-acute-decomposed', 'e\u0301 cafe\u0301 re\u0301sume\u0301');
  add('combining-precomposed', '\u00e9 caf\u00e9 r\u00e9sum\u00e9');
  add('combining-both', 'caf\u00e9 vs cafe\u0301 \u00c5 vs A\u030a vs \u212b');
  add('combining-leading-mark', '\u0301start \u0301 \u0308\u0308');
  add('combining-zalgo', zalgo('Zalgo text is coming', 0x2a1, 8));
  add('combining-zalgo-heavy', zalgo('HE COMES', 0x2a2, 40));
  add('devanagari', '\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e\u0964 \u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e \u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f');
  add('thai', '\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e19\u0e49\u0e33\u0e17\u0e35\u0e48\u0e44\u0e2b\u0e19');
  add('tamil-bengali', '\u0bb5\u0ba3\u0b95\u0bcd\u0b95\u0bae\u0bcd \u09a8\u09ae\u09b8\u09cd\u0995\u09be\u09b0');
  add('vietnamese', 'Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u: \u0111\u01b0\u1eddng ph\u1ed1 H\u00e0 N\u1ed9i');
  add('combining-enclosing-keycap', 'a\u20dd b\u20e3 \u20e3');

  // Emoji.
  add('emoji-single', '\u{1f600}');
  add('emoji-sentence', 'I love pizza \u{1f355} and coffee \u2615!');
  add('emoji-skin-tone', '\u{1f44d}\u{1f3fd} \u{1f44b}\u{1f3ff}\u{1f44b}\u{1f3fb}');
  add('emoji-zwj-family', '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}');
  add('emoji-zwj-mixed', '\u{1f9d1}\u{1f3ff}\u200d\u{1f4bb} \u{1f3f3}\ufe0f\u200d\u{1f308} \u{1f441}\ufe0f\u200d\u{1f5e8}\ufe0f');
  add('emoji-flags', '\u{1f1eb}\u{1f1f7}\u{1f1fa}\u{1f1f8}\u{1f1ef}\u{1f1f5} \u{1f1e9}\u{1f1ea}');
  add('emoji-flag-tags', '\u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}');
  add('emoji-keycap', '1\ufe0f\u20e3 #\ufe0f\u20e3 *\ufe0f\u20e3');
  add('emoji-next-to-letters', 'abc\u{1f600}def \u{1f600}x x\u{1f600} 1\u{1f600}2');
  add('emoji-run', '\u{1f525}\u{1f525}\u{1f525}\u{1f389}\u{1f389}\u{1f914}\u{1f914}\u{1f914}\u{1f914}');
  add('emoji-text-presentation', '\u2764 \u2764\ufe0f \u2764\ufe0e \u263a\ufe0f');

  // CJK.
  add('chinese', '\u6211\u4eec\u6b63\u5728\u7528\u4eba\u7c7b\u53cd\u9988\u8fdb\u884c\u5f3a\u5316\u5b66\u4e60\u3002\u4f60\u597d\uff0c\u4e16\u754c\uff01');
  add('chinese-traditional', '\u7e41\u9ad4\u4e2d\u6587\u8207\u7c21\u9ad4\u4e2d\u6587\u3002');
  add('japanese', '\u3053\u3093\u306b\u3061\u306f\u4e16\u754c\u3002\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002');
  add('japanese-halfwidth', '\uff76\uff80\uff76\uff85 \uff8a\uff9d\uff76\uff78 \uff71\uff72\uff73');
  add('korean', '\uc548\ub155\ud558\uc138\uc694. \ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4.');
  add('korean-jamo', '\u1100\u1161\u11a8 \u3131\u314f');
  add('cjk-ext-b', '\u{20000}\u{20001}\u{2a6d6} \u{2b740}');
  add('cjk-with-ascii', 'GPT-2\u306f\u8a00\u8a9e\u30e2\u30c7\u30eb\u3067\u3059 (2019\u5e74)');

  // Right-to-left.
  add('hebrew', '\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd');
  add('hebrew-niqqud', '\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd');
  add('arabic', '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645');
  add('arabic-harakat', '\u0627\u064e\u0644\u0633\u0651\u064e\u0644\u0627\u0645\u064f \u0639\u064e\u0644\u064e\u064a\u0652\u0643\u064f\u0645\u0652');
  add('rtl-ltr-mixed', 'The word \u05e9\u05dc\u05d5\u05dd means peace; \u0633\u0644\u0627\u0645 too. 123 \u05d0\u05d1\u05d2 456');
  add('rtl-marks', 'abc\u200e\u05d0\u05d1\u05d2\u200f def \u200e\u200f \u202b\u202c \u2067\u2069 \u061c');
  add('persian-urdu', '\u0641\u0627\u0631\u0633\u06cc \u0627\u0631\u062f\u0648 \u06a9\u06af\u067e');

  // Other scripts.
  add('cyrillic', '\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u0441\u0442. \u0401\u0436 \u0457\u0436\u0430\u043a');
  add('greek', '\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5! \u1f08\u03c1\u03c7\u03b9\u03bc\u03ae\u03b4\u03b7\u03c2 \u03c2\u03c3');
  add('latin-extended', '\u017b\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144 Stra\u00dfe \u1e9e \u0133 \ufb01 \u01c5 \u0130stanbul \u0131');
  add('armenian-georgian-ethiopic', '\u0532\u0561\u0580\u0587 \u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0 \u1230\u120b\u121d');
  add('modifier-letters', '\u02b0\u02b2 \u02c8stress \u1d43\u1d47 \u3005\u309d');

  // Symbols and punctuation.
  add('math-symbols', '\u2200x \u2208 \u211d: x\u00b2 \u2265 0, \u2211\u1d62 a\u1d62 \u2260 \u222b f(x) dx \u2248 \u221e \u00b1 \u221a2');
  add('currency', '$5 \u20ac10 \u00a520 \u20b930 \u00a340 \u00a2 \u20bf \u20bd $$$ \u20ac\u20ac');
  add('box-drawing', '\u250c\u2500\u2500\u2510\n\u2502hi\u2502\n\u2514\u2500\u2500\u2518 \u2588\u2593\u2592\u2591');
  add('punct-runs', '!!!???... ?!?! ... .... ,,, ;;; ::');
  add('em-dash-ellipsis', 'wait\u2014what\u2026 really \u2013 yes\u2026\u2026 \u2014\u2014');
  add('brackets', '([{<>}]) \u300c\u300d \u3010\u3011 \u00ab\u00bb \u2039\u203a');
  add('ascii-art', '(\u256f\u00b0\u25a1\u00b0)\u256f\ufe35 \u253b\u2501\u253b  \u00af\\_(\u30c4)_/\u00af  <3 :-) ;)');
  add('all-ascii-printable', range(0x20, 0x7e).join(''));

  // Code.
  add('code-c', '#include <stdio.h>\n\nint main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++) {\n' +
    '        printf("%s\\n", argv[i]);\n    }\n    return 0;\n}\n');
  add('code-python', 'def f(x):\n    if x > 0:\n        return x ** 2\n    else:\n\treturn -x  # tab\n\n' +
    'class A:\n    """Doc string."""\n    pass\n');
  add('code-json', '{"name": "gpt2", "n_layer": 12, "n_embd": 768, "vocab": [1, 2, 3], "ok": true, "x": null,\n  "nested": {"a": "b\\"c"}}');
  add('code-shell', '#!/bin/sh\nset -eu\nfor f in *.txt; do echo "$f" | wc -c; done 2>/dev/null || true\n');
  add('code-html', '<!DOCTYPE html><html><body><p class="x">Hi &amp; bye</p></body></html>');
  add('code-minified', 'a=1;b=2;if(a<b){c=a+b}else{c=a-b};console.log(c);;;');
  add('url', 'https://example.com/path/to/page?query=1&x=%20y#frag http://localhost:8080/ ftp://a.b/c');
  add('email', 'Contact john.doe+tag@example.co.uk or admin@localhost, <bob@example.org>.');
  add('markdown', '# Title\n\n- item **bold** _it_ `code`\n1. [link](https://x.y)\n\n> quote\n\n---\n');

  // <|endoftext|>
  add('eot-alone', '<|endoftext|>');
  add('eot-start', '<|endoftext|>The beginning.');
  add('eot-middle', 'First document.<|endoftext|>Second document.');
  add('eot-end', 'The end.<|endoftext|>');
  add('eot-twice', '<|endoftext|><|endoftext|>');
  add('eot-twice-separated', 'a <|endoftext|> b <|endoftext|> c');
  add('eot-adjacent-letters', 'a<|endoftext|>b');
  add('eot-partial', '<|endoftext|');
  add('eot-partial-2', '<|endoftext <|end|> endoftext|> <|ENDOFTEXT|> < |endoftext| >');
  add('eot-space-before', ' <|endoftext|>');
  add('eot-newlines', '\n<|endoftext|>\n\n<|endoftext|>\n');
  add('eot-nested', '<|<|endoftext|>|>');
  add('eot-other-specials', '<|startoftext|> <|im_start|> <|fim_prefix|>');

  // Long inputs.
  const alpha = 'abcdefghijklmnopqrstuvwxyz';
  add('long-word-1000', Array.from({ length: 1000 }, (_, i) => alpha[(i * 7 + (i >> 3)) % 26]).join(''));
  add('long-word-repeated-a', 'a'.repeat(1000));
  add('long-punct-excl', '!'.repeat(2000));
  add('long-punct-dash', '-'.repeat(1000) + ' ' + '='.repeat(500));
  add('long-punct-mixed', '.,;:!?'.repeat(300));
  add('long-line-5000', LOREM.repeat(Math.ceil(5000 / LOREM.length)).slice(0, 5000));
  add('long-digits', '0123456789'.repeat(100));
  add('long-cjk', '\u6f22\u5b57'.repeat(300));
  add('long-emoji', '\u{1f600}'.repeat(200));
  add('long-newlines', '\n'.repeat(500) + 'x' + '\n'.repeat(500));

  // Unusual code points.
  add('private-use', '\ue000\uf8ff \u{f0000}\u{10fffd} a\ue000b');
  add('unassigned', '\u0378\u0379 \u0380 x\u0378y \u{2fffd} \u{e0080}');
  add('noncharacters', '\ufdd0\ufdef \u{1fffe}\u{10ffff}');
  add('fffe-ffff', 'a\ufffeb\uffffc \ufffe\uffff');
  add('replacement-char', '\ufffd \ufffd\ufffd bad\ufffdbyte');
  add('supplementary-fraktur', '\u{1d518}\u{1d52b}\u{1d526}\u{1d521}\u{1d522} \u{1d4af}\u{1d4ae}\u{1d4c9}');
  add('supplementary-deseret', '\u{10400}\u{10428}\u{10401} \u{10330}\u{10331} \u{13000}\u{13001}');
  add('supplementary-math-bold', '\u{1d400}\u{1d401}\u{1d402} \u{1d41a}\u{1d41b}');
  add('tags-block', 'x\u{e0001}\u{e0041}\u{e0042}\u{e007f}y');
  // Recently assigned (Unicode 15/15.1/16): letters/digits whose class depends
  // on the Unicode version of the regex tables.
  add('recent-unicode', 'x\u{1e030}\u{1e031}y \u{31350}\u{31351} \u{2ebf0} \u1c89\u1c8a 1\u{1e4f1}\u{1e4f2}2 \u{11f50}\u{11f51} \u{116d0}');
  add('controls-all', range(0x01, 0x1f).join(''));
  add('controls-in-text', 'a\u0001b\u0002c\u0007d\u0008e\u001bf\u007fg \u0080\u009f');
  add('control-escape-seq', '\u001b[31mred\u001b[0m normal');
  for (const c of [0x01, 0x07, 0x08, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f, 0x7f]) {
    add(`control-u${c.toString(16).padStart(4, '0')}`, `x${cp(c)} ${cp(c)}y`);
  }
  return C;
}

// ---------------------------------------------------------------------------
// Fortunes: real English paragraphs.

function isEnglishParagraph(t) {
  if (t.length < 250 || t.length > 1500) return false;
  if (/[\x00-\x08\x0e-\x1f\x7f]/.test(t)) return false; // overstriking etc.
  const letters = (t.match(/[A-Za-z]/g) || []).length;
  const spaces = (t.match(/ /g) || []).length;
  return letters / t.length > 0.65 && spaces / t.length > 0.1;
}

export function fortuneCases(dir = FORTUNE_DIR, seed = FORTUNE_SEED, count = FORTUNE_COUNT) {
  if (!fs.existsSync(dir)) {
    throw new Error(`${dir} not found: install Debian's fortunes package (apt-get install -y fortunes)`);
  }
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const files = fs.readdirSync(dir).filter((f) => !f.includes('.')).sort();
  const candidates = [];
  for (const f of files) {
    const full = path.join(dir, f);
    const st = fs.lstatSync(full);
    if (!st.isFile()) continue;
    let text;
    try {
      text = decoder.decode(fs.readFileSync(full));
    } catch {
      continue; // not valid UTF-8
    }
    const parts = text.split(/^%\n/m);
    parts.forEach((p, i) => {
      const t = p.replace(/\n$/, '');
      if (isEnglishParagraph(t)) candidates.push({ name: `fortune/${f}/${i}`, text: t });
    });
  }
  if (candidates.length < count) throw new Error(`only ${candidates.length} fortunes found in ${dir}`);
  const rng = makeRng(seed);
  const chosen = new Set();
  while (chosen.size < count) chosen.add(rng.int(candidates.length));
  return [...chosen].sort((a, b) => a - b).map((i) => candidates[i]);
}

export function allCases() {
  const cases = [...handCases(), ...randomCases(), ...fortuneCases()];
  const seen = new Set();
  for (const c of cases) {
    if (seen.has(c.name)) throw new Error(`duplicate case name ${c.name}`);
    seen.add(c.name);
    for (const ch of c.text) {
      const u = ch.codePointAt(0);
      if (u >= 0xd800 && u <= 0xdfff) throw new Error(`lone surrogate in ${c.name}`);
    }
  }
  return cases;
}

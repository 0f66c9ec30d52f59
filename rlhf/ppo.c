/* ppo.c — GAE, whitening, the clipped PPO losses with their gradients, KL estimators, explained
 * variance, the categorical and diagonal-Gaussian policy heads, and minibatch permutations.
 * See ppo.h. Sums are taken in double, in index order, so results do not depend on threads. */
#include "ppo.h"

#include "rng.h"

#include <math.h>

#define REAL(mask, i) (!(mask) || (mask)[i])

void ppo_gae(float *adv, float *ret, const float *rewards, const float *values, const uint8_t *terminated,
             const uint8_t *truncated, const float *trunc_values, const float *last_values, const uint8_t *mask,
             const ppo_layout *lay, float gamma, float lambda)
{
    const double g = gamma, gl = (double)gamma * lambda;
    for (int i = 0; i < lay->n_seq; i++) {
        double next_v = last_values ? last_values[i] : 0.0, next_a = 0.0;
        for (int t = lay->len - 1; t >= 0; t--) {
            const long k = (long)i * lay->seq_stride + (long)t * lay->time_stride;
            if (!REAL(mask, k)) {
                adv[k] = 0;
                ret[k] = 0;
                continue;
            }
            double nv = next_v, na = next_a;
            if (terminated && terminated[k]) {
                nv = 0;
                na = 0;
            } else if (truncated && truncated[k]) {
                nv = trunc_values ? trunc_values[k] : 0.0;
                na = 0;
            }
            const double v = values[k];
            const double a = (double)rewards[k] + g * nv - v + gl * na;
            adv[k] = (float)a;
            ret[k] = (float)(a + v);
            next_v = v;
            next_a = a;
        }
    }
}

void ppo_mean_std(const float *x, const uint8_t *mask, long n, double *mean, double *std)
{
    double s = 0;
    long c = 0;
    for (long i = 0; i < n; i++)
        if (REAL(mask, i)) {
            s += x[i];
            c++;
        }
    const double m = c ? s / (double)c : 0.0;
    double ss = 0;
    for (long i = 0; i < n; i++)
        if (REAL(mask, i)) ss += ((double)x[i] - m) * ((double)x[i] - m);
    *mean = m;
    *std = c > 1 ? sqrt(ss / (double)(c - 1)) : 0.0;
}

void ppo_whiten(float *x, const uint8_t *mask, long n, float eps, int shift_mean)
{
    double m, sd;
    ppo_mean_std(x, mask, n, &m, &sd);
    long c = 0;
    for (long i = 0; i < n; i++) c += REAL(mask, i);
    const double inv = c > 1 ? 1.0 / (sd + eps) : 1.0;
    for (long i = 0; i < n; i++)
        if (REAL(mask, i)) x[i] = (float)(((double)x[i] - m) * inv + (shift_mean ? 0.0 : m));
}

double ppo_policy_loss(const float *logp, const float *old_logp, const float *adv, const uint8_t *mask, long n,
                       float clip, float scale, float *dlogp, ppo_pg_stats *st)
{
    double loss = 0, clipped = 0, k1 = 0, k3 = 0, rs = 0;
    long c = 0;
    for (long i = 0; i < n; i++) c += REAL(mask, i);
    const double inv = c ? 1.0 / (double)c : 0.0;
    for (long i = 0; i < n; i++) {
        if (!REAL(mask, i)) {
            if (dlogp) dlogp[i] = 0;
            continue;
        }
        const double lr = (double)logp[i] - old_logp[i], ratio = exp(lr), a = adv[i];
        const double rc = fmin(fmax(ratio, 1.0 - clip), 1.0 + clip);
        const double l1 = -a * ratio, l2 = -a * rc;
        /* the unclipped term carries the gradient unless the clipped one is strictly larger, in
         * which case the ratio sits outside the clip range and the loss is flat in logp */
        const int flat = l2 > l1;
        loss += flat ? l2 : l1;
        if (dlogp) dlogp[i] = flat ? 0.0f : (float)(scale * inv * l1); /* d(-a*e^lr)/dlogp = -a*ratio */
        clipped += fabs(ratio - 1.0) > clip;
        k1 += -lr;
        k3 += (ratio - 1.0) - lr;
        rs += ratio;
    }
    if (st) {
        st->loss = loss * inv;
        st->clipfrac = clipped * inv;
        st->approx_kl = k1 * inv;
        st->approx_kl_k3 = k3 * inv;
        st->ratio = rs * inv;
    }
    return loss * inv;
}

double ppo_value_loss(const float *v, const float *old_v, const float *ret, const uint8_t *mask, long n, float clip,
                      float scale, float *dv, double *clipfrac)
{
    double loss = 0, clipped = 0;
    long c = 0;
    for (long i = 0; i < n; i++) c += REAL(mask, i);
    const double inv = c ? 1.0 / (double)c : 0.0;
    for (long i = 0; i < n; i++) {
        if (!REAL(mask, i)) {
            if (dv) dv[i] = 0;
            continue;
        }
        const double e1 = (double)v[i] - ret[i];
        double l = e1 * e1, g = e1;
        if (clip > 0) {
            const double d = (double)v[i] - old_v[i];
            const double dc = fmin(fmax(d, -(double)clip), (double)clip);
            const double e2 = (double)old_v[i] + dc - ret[i];
            if (e2 * e2 > l) {
                l = e2 * e2;
                g = fabs(d) < clip ? e2 : 0.0; /* clamped: flat in v */
                clipped += 1;
            }
        }
        loss += 0.5 * l;
        if (dv) dv[i] = (float)(scale * inv * g);
    }
    if (clipfrac) *clipfrac = clipped * inv;
    return loss * inv;
}

void ppo_kl(const float *logp_new, const float *logp_ref, const uint8_t *mask, long n, double *k1, double *k3)
{
    double s1 = 0, s3 = 0;
    long c = 0;
    for (long i = 0; i < n; i++) {
        if (!REAL(mask, i)) continue;
        const double r = (double)logp_ref[i] - logp_new[i];
        s1 += -r;
        s3 += expm1(r) - r;
        c++;
    }
    *k1 = c ? s1 / (double)c : 0.0;
    *k3 = c ? s3 / (double)c : 0.0;
}

double ppo_explained_variance(const float *v, const float *ret, const uint8_t *mask, long n)
{
    double sy = 0, sd = 0;
    long c = 0;
    for (long i = 0; i < n; i++)
        if (REAL(mask, i)) {
            sy += ret[i];
            sd += (double)ret[i] - v[i];
            c++;
        }
    if (c == 0) return NAN;
    const double my = sy / (double)c, md = sd / (double)c;
    double vy = 0, vd = 0;
    for (long i = 0; i < n; i++)
        if (REAL(mask, i)) {
            const double y = (double)ret[i] - my, d = (double)ret[i] - v[i] - md;
            vy += y * y;
            vd += d * d;
        }
    return vy == 0 ? NAN : 1.0 - vd / vy;
}

/* ---- policies ---------------------------------------------------------------------------------- */

/* log-sum-exp of one row, max-shifted */
static double row_lse(const float *x, int k)
{
    double mx = x[0], s = 0;
    for (int j = 1; j < k; j++) mx = x[j] > mx ? x[j] : mx;
    for (int j = 0; j < k; j++) s += exp((double)x[j] - mx);
    return mx + log(s);
}

void ppo_categorical_fwd(const float *logits, long ld, int n, int k, const int32_t *act, float *logp, float *ent)
{
    for (int r = 0; r < n; r++) {
        const float *x = logits + (long)r * ld;
        const double lse = row_lse(x, k);
        if (logp) logp[r] = (float)((double)x[act[r]] - lse);
        if (ent) {
            double h = 0;
            for (int j = 0; j < k; j++) {
                const double lp = (double)x[j] - lse;
                h -= exp(lp) * lp;
            }
            ent[r] = (float)h;
        }
    }
}

void ppo_categorical_bwd(float *dlogits, const float *logits, long ld, int n, int k, const int32_t *act,
                         const float *dlogp, const float *dent)
{
    for (int r = 0; r < n; r++) {
        const float *x = logits + (long)r * ld;
        float *dx = dlogits + (long)r * ld;
        const double lse = row_lse(x, k), gl = dlogp ? dlogp[r] : 0.0, ge = dent ? dent[r] : 0.0;
        double h = 0;
        if (ge != 0)
            for (int j = 0; j < k; j++) {
                const double lp = (double)x[j] - lse;
                h -= exp(lp) * lp;
            }
        for (int j = 0; j < k; j++) {
            const double lp = (double)x[j] - lse, p = exp(lp);
            dx[j] = (float)(gl * ((j == act[r]) - p) - ge * p * (lp + h));
        }
    }
}

int ppo_categorical_sample(const float *logits, int k, uint64_t *rng)
{
    const double lse = row_lse(logits, k), u = rng_unit(rng);
    double c = 0;
    for (int j = 0; j < k; j++) {
        c += exp((double)logits[j] - lse);
        if (u < c) return j;
    }
    return k - 1; /* u beyond the rounded total */
}

int ppo_argmax(const float *x, int k)
{
    int b = 0;
    for (int j = 1; j < k; j++)
        if (x[j] > x[b]) b = j;
    return b;
}

#define HALF_LOG_2PI 0.91893853320467274178

void ppo_gaussian_fwd(const float *mean, const float *log_std, int n, int d, const float *act, float *logp)
{
    for (int r = 0; r < n; r++) {
        double s = 0;
        for (int j = 0; j < d; j++) {
            const double z = ((double)act[(long)r * d + j] - mean[(long)r * d + j]) * exp(-(double)log_std[j]);
            s += -0.5 * z * z - log_std[j] - HALF_LOG_2PI;
        }
        logp[r] = (float)s;
    }
}

double ppo_gaussian_entropy(const float *log_std, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)log_std[j] + 0.5 + HALF_LOG_2PI;
    return s;
}

void ppo_gaussian_bwd(float *dmean, float *dlog_std, const float *mean, const float *log_std, int n, int d,
                      const float *act, const float *dlogp, float dent_total)
{
    for (int j = 0; j < d; j++) {
        const double inv_var = exp(-2.0 * log_std[j]);
        double ds = 0;
        for (int r = 0; r < n; r++) {
            const double diff = (double)act[(long)r * d + j] - mean[(long)r * d + j];
            dmean[(long)r * d + j] = (float)(dlogp[r] * diff * inv_var);
            ds += dlogp[r] * (diff * diff * inv_var - 1.0);
        }
        dlog_std[j] += (float)(ds + dent_total);
    }
}

/* ---- minibatches ------------------------------------------------------------------------------- */

void ppo_permutation(int *idx, int n, uint64_t *rng)
{
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = n - 1; i > 0; i--) {
        const int j = (int)rng_below(rng, (uint64_t)i + 1);
        const int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

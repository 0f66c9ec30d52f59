/* safetensors.h — a strict reader and an atomic writer of the safetensors format (Hugging Face's
 * weight files), so models move between rlhf.c and transformers without pickle or conversions.
 *
 * Format: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON (starting with '{', may be padded
 * with trailing spaces):
 *     {"__metadata__": {str: str}  (optional),
 *      name: {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
 * then the data section; offsets are bytes relative to its start, little-endian, row-major.
 *
 * The reader is strict, like the Rust reference: every tensor entry must be well formed, its byte
 * size must match shape x dtype, tensors must not overlap and must cover the data section exactly
 * (no holes, no trailing bytes); duplicate keys are rejected. Errors follow the project's
 * convention: functions return 0 / -1 and write one line "file:offset: ..." or
 * "file: tensor \"name\": ..." into err; nothing is printed.
 *
 * The writer lays tensors out in the order given, pads the header with spaces to a multiple of 8
 * bytes (so the data section starts 8-aligned, as the reference writer does) and replaces the
 * target atomically (temporary file in the same folder, then rename), streaming the tensors' bytes
 * without copying them. Little-endian hosts only (checked at compile time).
 */
#ifndef RLHF_SAFETENSORS_H
#define RLHF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u * 1000u * 1000u) /* bytes; a larger header length is rejected */

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64,
    ST_NUM_DTYPES
} st_dtype;

const char *st_dtype_name(st_dtype d);             /* "F32"...; "?" when out of range */
size_t st_dtype_size(st_dtype d);                  /* bytes per element; 0 when out of range */
int st_dtype_parse(const char *name, st_dtype *out); /* 0, or -1 for an unknown name */

typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;                      /* 0 (scalar) .. ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS];
    size_t numel;                  /* product of shape (1 for a scalar) */
    size_t begin, end;             /* byte range in the data section */
    const uint8_t *data;           /* the tensor's bytes (little-endian, NOT aligned in general) */
    size_t index;                  /* position in st_get order */
} st_tensor;

typedef struct st_file st_file;

/* Parse a whole safetensors image. name_for_errors prefixes every message. The result borrows buf
 * (tensor data points into it): keep buf alive and unchanged until st_close. */
int st_parse(const uint8_t *buf, size_t len, const char *name_for_errors, st_file **out, char *err,
             size_t errlen);
/* Read the whole file and parse it; the file owns its buffer. */
int st_open(const char *path, st_file **out, char *err, size_t errlen);
void st_close(st_file *f);

/* Tensors in data order (by begin offset, then end, then name). */
size_t st_count(const st_file *f);
const st_tensor *st_get(const st_file *f, size_t i);   /* NULL when i >= count */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL when absent */
const char *st_name(const st_file *f);                 /* name_for_errors (or the path) */
size_t st_header_len(const st_file *f);                /* N */

/* __metadata__, in header order */
size_t st_metadata_count(const st_file *f);
const char *st_metadata(const st_file *f, const char *key);  /* NULL when absent */
int st_metadata_at(const st_file *f, size_t i, const char **key, const char **value); /* -1 out of range */

/* Convert a floating-point tensor (F32, F16 incl. subnormals/inf/nan, BF16, F64, F8_E5M2, F8_E4M3)
 * into n floats; n must equal t->numel. Integer and bool tensors are an error. */
int st_read_f32(const st_file *f, const st_tensor *t, float *dst, size_t n, char *err, size_t errlen);
/* Copy the tensor's bytes as stored (little-endian); nbytes must equal its byte size. */
int st_read_raw(const st_file *f, const st_tensor *t, void *dst, size_t nbytes, char *err, size_t errlen);

/* half / bfloat16 bits to float, exactly (exposed for tests and callers that keep 16-bit data) */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

/* ---- writing ----------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;              /* numel * dtype size bytes, little-endian */
} st_out;

typedef struct {
    const char *key, *value;
} st_meta;

/* Write tensors (in this order, contiguous from offset 0) and metadata (may be NULL / 0) to path
 * atomically. Names must be unique, valid UTF-8, and not "__metadata__". */
int st_write(const char *path, const st_out *tensors, size_t n, const st_meta *meta, size_t n_meta, char *err,
             size_t errlen);
/* The same bytes into a fresh malloc'd buffer (*out; caller frees). */
int st_write_mem(const st_out *tensors, size_t n, const st_meta *meta, size_t n_meta, uint8_t **out,
                 size_t *outlen, char *err, size_t errlen);

#endif

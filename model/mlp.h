/* mlp.h — a multilayer perceptron (linear layers with tanh between them, none after the last):
 * the actor and critic networks of classic-control PPO.
 *
 * Like GPT-2 here, the parameters live in the caller's flat block (one block can hold an actor, a
 * critic and a log-std, stepped by one AdamW), described by one table of offsets; weights are
 * stored [in, out] and every product goes through op_matmul_fwd/bwd (mm_sgemm). Activations are
 * kept in a workspace allocated once for a maximum batch, so training loops allocate nothing.
 * Initialisation is CleanRL's: orthogonal weights (gain sqrt(2) for hidden layers, a chosen gain
 * for the output layer), zero biases. */
#ifndef RLHF_MLP_H
#define RLHF_MLP_H

#include <stddef.h>
#include <stdint.h>

#define MLP_MAX_LAYERS 8

typedef struct {
    int n_layers;                   /* linear layers */
    int dims[MLP_MAX_LAYERS + 1];   /* dims[0] inputs ... dims[n_layers] outputs */
    size_t w_off[MLP_MAX_LAYERS];   /* layer l's weight (dims[l], dims[l+1]) in the block */
    size_t b_off[MLP_MAX_LAYERS];   /* its bias (dims[l+1]) */
    size_t offset, n_params;        /* where the MLP starts in the block, and its size */
} mlp_shape;

/* Describe an MLP with the given layer widths (n_layers + 1 of them) placed at `offset` in a
 * parameter block. */
int mlp_shape_init(mlp_shape *s, const int *dims, int n_layers, size_t offset, char *err, size_t errlen);

typedef struct {
    int max_batch;
    float *acts;    /* layer outputs, layer l at acts + max_batch * (dims[1] + ... + dims[l]) */
    float *d0, *d1; /* backward scratch, max_batch * max(dims) each */
} mlp_ws;

int mlp_ws_create(mlp_ws *w, const mlp_shape *s, int max_batch, char *err, size_t errlen);
void mlp_ws_free(mlp_ws *w);

/* Orthogonal init of the MLP's slice of params (rng: the caller's splitmix64 state). */
void mlp_init(const mlp_shape *s, float *params, float out_gain, uint64_t *rng);

/* Orthogonal (rows, cols) matrix, row-major, times gain: torch.nn.init.orthogonal_'s recipe (QR
 * of a standard-normal matrix, signs so that R has a positive diagonal) with QR by modified
 * Gram-Schmidt, which yields that sign convention by construction. */
void mlp_orthogonal(float *m, int rows, int cols, float gain, uint64_t *rng);

/* out (B, dims[L]) = MLP(x (B, dims[0])); B <= max_batch. Returns a pointer into the workspace,
 * valid until the next forward. */
const float *mlp_forward(const mlp_shape *s, const float *params, mlp_ws *w, const float *x, int B, int nthreads);

/* Backward of the last forward (same x, B): grads += d params (the MLP's slice of a gradient block
 * laid out like params); dx (B, dims[0]) = d x when non-NULL. dout (B, dims[L]) is not changed. */
void mlp_backward(const mlp_shape *s, const float *params, float *grads, mlp_ws *w, const float *x, const float *dout,
                  int B, float *dx, int nthreads);

#endif

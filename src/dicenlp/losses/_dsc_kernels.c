/* Fused CPU kernels for the multi-class self-adjusting dice loss (DSC): the [N, C] passes of
 * _softmax_dice.py (its module docstring has the notation and the derivation) in one sweep over the rows.
 * The PyTorch implementation makes about 18 passes over [N, C], each a trip through memory; here a block
 * of rows is read once and its softmax, T split and dense terms are computed while it sits in L1. The
 * [N]-sized parts stay in Python.
 *
 * Compiled on first use by _cpu_kernels.py (cc -O3 -fopenmp, -march for the CPU's vector width) and called
 * through ctypes. Written with GCC's vector extensions (__builtin_shuffle is GCC's: under Clang the build
 * fails and the PyTorch code runs): one vector holds one column of LANES rows, so
 * every loop runs over the C columns with full-width vector operations, whatever C is (a loop along a row
 * of, say, 50 classes spends most of its time in remainders and horizontal reductions, and the compiler's
 * auto-vectoriser gives up on the branch-free exp/log below on some targets). exp and log are the Cephes
 * single-precision algorithms, accurate to about 1 ulp over the ranges used here (exp of x - max(x) <= 0
 * and of (k alpha - 1) log(1 - p) <= 0.7; log of 1 - p in [1/2, 1]).
 *
 * Layout. Rows are taken in groups of LANES (the vector width in floats: a wider vector type is lowered to
 * slow code, a narrower one wastes the registers). small and psi, which only the backward reads, stay
 * interleaved: [G, C, LANES] with G = ceil(N / LANES), element (i, j) at ((i / LANES) C + j) LANES + i % LANES.
 * The last group's unused lanes repeat the group's first row; they are masked out of every sum and never
 * written to a per-row output. Column sums are kept per block of GROUPS_PER_BLOCK groups and per lane
 * (partial [B, C, LANES]) and summed by the caller: the order of additions, hence the result, does not
 * depend on the number of threads.
 */
#include <stdint.h>
#include <string.h>

#ifndef LANES /* rows per vector: set by the build to the CPU's vector width (16 floats for AVX-512, 8 AVX2, 4) */
#define LANES 16
#endif
#define GROUPS_PER_BLOCK 16

int dsc_lanes(void) { return LANES; }

typedef float vf __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(LANES * sizeof(int32_t))));

static inline vf splat(float a) { return (vf){0} + a; }
static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros, as comparisons return) */
static inline vf select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }

/* e^x for x <= 88; 0 below -87.3 (where e^x is subnormal); NaN for NaN. */
static inline vf exp_v(vf x) {
    const vf lo = splat(-87.3365447f), round = splat(12582912.0f); /* 1.5 2^23: adding it rounds to an integer */
    const vf xc = select(x < lo, lo, select(x > 88.0f, splat(88.0f), x));
    vf n = (xc * 1.44269504088896341f + round) - round;
    n = select(n >= -127.0f, n, splat(-127.0f)); /* NaN → -127: the integer conversion below stays defined */
    const vf r = xc - n * 0.693359375f + n * 2.12194440e-4f; /* x - n ln 2 in two parts (Cody-Waite) */
    vf y = splat(1.9875691500e-4f);
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    const vi scale = (__builtin_convertvector(n, vi) + 127) << 23; /* 2^n as float bits */
    return select(x < lo, splat(0.0f), y * (vf)scale);
}

/* log x for normal x > 0 (here x = 1 - p in [1/2, 1]). */
static inline vf log_v(vf x) {
    const vi bits = (vi)x;
    vf e = __builtin_convertvector(((bits >> 23) & 0xff) - 126, vf);
    const vf m = (vf)((bits & 0x007fffff) | 0x3f000000); /* x = m 2^e, m in [1/2, 1) */
    const vi below = m < 0.707106781186547524f;
    e = select(below, e - 1.0f, e);
    const vf f = select(below, m + m - 1.0f, m - 1.0f);
    const vf z = f * f;
    vf y = splat(7.0376836292e-2f);
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z - e * 2.12194440e-4f - 0.5f * z;
    return f + y + e * 0.693359375f;
}

/* Transposes the LANES x LANES tile v in place (v[a][b] → v[b][a]): log2(LANES) rounds of interleaving the
 * first half of the vectors with the second half (a perfect shuffle; each shuffle is one instruction on
 * AVX-512 and a few on AVX2). */
static inline void transpose(vf v[LANES]) {
    vi lo, hi;
    for (int i = 0; i < LANES / 2; i++) {
        lo[2 * i] = i, lo[2 * i + 1] = i + LANES;
        hi[2 * i] = i + LANES / 2, hi[2 * i + 1] = i + LANES / 2 + LANES;
    }
    for (int round = 1; round < LANES; round *= 2) {
        vf w[LANES];
        for (int i = 0; i < LANES / 2; i++) {
            w[2 * i] = __builtin_shuffle(v[i], v[i + LANES / 2], lo);
            w[2 * i + 1] = __builtin_shuffle(v[i], v[i + LANES / 2], hi);
        }
        memcpy(v, w, sizeof w);
    }
}

/* dst (interleaved, [C, LANES]) = the rows row[0..LANES) of src [., C], transposed by tiles. */
static inline void load_rows(float *restrict dst, const float *restrict src, const int64_t *row, int64_t C) {
    int64_t j0 = 0;
    for (; j0 + LANES <= C; j0 += LANES) {
        vf v[LANES];
        for (int l = 0; l < LANES; l++) v[l] = load(src + row[l] * C + j0);
        transpose(v);
        for (int j = 0; j < LANES; j++) store(dst + (j0 + j) * LANES, v[j]);
    }
    for (int l = 0; l < LANES; l++)
        for (int64_t j = j0; j < C; j++) dst[j * LANES + l] = src[row[l] * C + j];
}

/* Forward. In: x [N, C] logits, t [N] targets, keep [N, C] OHEM mask or NULL; alpha, k (1 or 2), mean
 * (reduction "mean", needs smooth > 0), smooth. Out (interleaved, see Layout): small = p with the T entry
 * zeroed, psi = keep h (1 - (1 + alpha) p) ("mean": times smooth/(Phi + smooth)^2), where
 * h = (1 - p)^{k alpha - 1} p^k; partial [B, C, LANES] = sums of keep Phi, Phi = h (1 - p) the y = 0 term
 * ("mean": l0 = Phi/(Phi + smooth)). Per row: sel [N, 2] = (t, T), T = argmax (the column with p > 1/2 if
 * there is one; any column is valid otherwise), and values [N, 8] = ROW_VALUES of _softmax_dice.py:
 * p~ at t and T, [t = T], f_t, e_T, p_T, 1/m, m = 1 - p_T (a sum of the other p), with m clamped at
 * sqrt(FLT_MIN) in p~_T and 1/m (the caller redoes the rows below it in log space).
 * A row holding NaN, +inf or only -inf gives NaN outputs, as torch.softmax does. */
void dsc_forward(const float *restrict x, const int64_t *restrict t, const float *restrict keep, int64_t N,
                 int64_t C, float alpha, int k, int mean, float smooth, float *restrict small, float *restrict psi,
                 float *restrict partial, int64_t *restrict sel, float *restrict values, int num_threads) {
    const int64_t G = (N + LANES - 1) / LANES, B = (G + GROUPS_PER_BLOCK - 1) / GROUPS_PER_BLOCK;
    const float exponent = k * alpha - 1.0f, one_plus_alpha = 1.0f + alpha, m_min = 1.0842021724855044e-19f;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_threads > 1)
    for (int64_t b = 0; b < B; b++) {
        float *acc = partial + b * C * LANES;
        memset(acc, 0, C * LANES * sizeof(float));
        const int64_t g_end = (b + 1) * GROUPS_PER_BLOCK < G ? (b + 1) * GROUPS_PER_BLOCK : G;
        for (int64_t g = b * GROUPS_PER_BLOCK; g < g_end; g++) {
            const int64_t n = N - g * LANES < LANES ? N - g * LANES : LANES;
            float *sg = small + g * C * LANES, *pg = psi + g * C * LANES;
            int64_t row[LANES];
            vf valid, tf;
            for (int l = 0; l < LANES; l++) {
                row[l] = g * LANES + (l < n ? l : 0);
                valid[l] = l < n ? 1.0f : 0.0f;
                tf[l] = (float)t[row[l]];
            }
            load_rows(sg, x, row, C);
            vf mx = load(sg);
            for (int64_t j = 1; j < C; j++) {
                const vf v = load(sg + j * LANES);
                mx = select(v > mx, v, mx);
            }
            /* e = e^{x - max} is 1 exactly at the maximum (and where x rounds to it): T = the first such column,
             * and 1 - p_T = (the sum of the other e)/sum, counting the other ties as 1 each (no cancellation) */
            vf sum = splat(0.0f), rest = splat(0.0f), ties = splat(0.0f), first = splat((float)C), e_t = splat(0.0f);
            for (int64_t j = 0; j < C; j++) {
                const vf e = exp_v(load(sg + j * LANES) - mx); /* NaN anywhere in a row makes its sum NaN */
                const vi top = e == 1.0f;
                store(sg + j * LANES, e);
                sum += e;
                rest += select(top, splat(0.0f), e);
                ties += select(top, splat(1.0f), splat(0.0f));
                first = select(top & (first == (float)C), splat((float)j), first);
                e_t = select(tf == (float)j, e, e_t);
            }
            const vi found = first < (float)C;
            const vf Tf = select(found, first, splat(0.0f)), inv_sum = 1.0f / sum;
            /* the per-row values (ROW_VALUES); for t = T, 1 - p_t is not needed (and not exact) */
            const vf p_T = select(found, inv_sum, sum), p_t = e_t * inv_sum, m = (rest + (ties - 1.0f)) * inv_sum;
            const vf m_c = select(m > m_min, m, splat(m_min)), q_t = 1.0f - p_t;
            const vi is_T = tf == Tf;
            const vf s_T = p_T * exp_v(alpha * log_v(m_c));
            const vf s_t = select(is_T, s_T, p_t * exp_v(alpha * log_v(q_t)));
            const vf f_t = select(is_T, splat(0.0f), 1.0f - alpha * p_t / q_t);
            const vf row_values[8] = {s_t, s_T, select(is_T, splat(1.0f), splat(0.0f)), f_t,
                                      1.0f - one_plus_alpha * p_T, p_T, 1.0f / m_c, m};
            for (int l = 0; l < n; l++) {
                const int64_t i = row[l];
                sel[2 * i] = t[i];
                sel[2 * i + 1] = (int64_t)Tf[l];
                for (int c = 0; c < 8; c++) values[8 * i + c] = row_values[c][l];
            }
            for (int64_t j = 0; j < C; j++) {
                const vf p = select(Tf == (float)j, splat(0.0f), load(sg + j * LANES) * inv_sum);
                vf h = exp_v(exponent * log_v(1.0f - p)) * p; /* 1 - p >= 1/2 (p = 0 at T): exact */
                if (k == 2) h *= p;
                vf phi = h * (1.0f - p), ps = h * (1.0f - one_plus_alpha * p);
                if (mean) { /* l0 = phi/(phi + smooth) and psi smooth/(phi + smooth)^2 */
                    const vf inv = 1.0f / (phi + smooth);
                    ps *= smooth * inv * inv;
                    phi *= inv;
                }
                if (keep) {
                    vf kk;
                    for (int l = 0; l < LANES; l++) kk[l] = keep[row[l] * C + j];
                    ps *= kk;
                    phi *= kk;
                }
                store(sg + j * LANES, p);
                store(pg + j * LANES, ps);
                store(acc + j * LANES, load(acc + j * LANES) + phi * valid);
            }
        }
    }
}

/* Backward. In: small, psi (interleaved, from the forward), coef [C], sel [N, 2] and values [N, 8] (from the
 * forward), G_sel [N, 2] (s dL/ds at t and T, times dL). Out: grad [N, C]:
 *     K_t = G_t f_t,  E_T = (G_T + [t = T] G_t) e_T,  R_i = sum_j psi_ij coef_j + K_t,
 *     grad_ij = psi_ij coef_j - small_ij (R_i + E_T / m_i),  then grad_it += K_t and grad_iT += E_T - p_T R_i. */
void dsc_backward(const float *restrict small, const float *restrict psi, const float *restrict coef,
                  const int64_t *restrict sel, const float *restrict values, const float *restrict G_sel, int64_t N,
                  int64_t C, float *restrict grad, int num_threads) {
    const int64_t G = (N + LANES - 1) / LANES;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_threads > 1)
    for (int64_t g = 0; g < G; g++) {
        const int64_t n = N - g * LANES < LANES ? N - g * LANES : LANES;
        const float *sg = small + g * C * LANES, *pg = psi + g * C * LANES;
        vf dot = splat(0.0f), K_t = splat(0.0f), E_T = splat(0.0f), inv_m = splat(0.0f), p_T = splat(0.0f);
        for (int64_t j = 0; j < C; j++) dot += load(pg + j * LANES) * coef[j];
        for (int l = 0; l < n; l++) {
            const float *v = values + 8 * (g * LANES + l), *G_i = G_sel + 2 * (g * LANES + l);
            K_t[l] = G_i[0] * v[3];
            E_T[l] = (G_i[1] + v[2] * G_i[0]) * v[4];
            p_T[l] = v[5];
            inv_m[l] = v[6];
        }
        const vf R = dot + K_t, r = R + E_T * inv_m, fix_T = E_T - p_T * R;
        /* grad_ij by tiles of LANES columns, transposed back to rows */
        int64_t j0 = 0;
        for (; j0 + LANES <= C; j0 += LANES) {
            vf v[LANES];
            for (int j = 0; j < LANES; j++)
                v[j] = load(pg + (j0 + j) * LANES) * coef[j0 + j] - load(sg + (j0 + j) * LANES) * r;
            transpose(v);
            for (int l = 0; l < n; l++) store(grad + (g * LANES + l) * C + j0, v[l]);
        }
        for (int64_t j = j0; j < C; j++) {
            const vf gj = load(pg + j * LANES) * coef[j] - load(sg + j * LANES) * r;
            for (int l = 0; l < n; l++) grad[(g * LANES + l) * C + j] = gj[l];
        }
        for (int l = 0; l < n; l++) {
            const int64_t i = g * LANES + l;
            grad[i * C + sel[2 * i]] += K_t[l];
            grad[i * C + sel[2 * i + 1]] += fix_T[l];
        }
    }
}

/* Fused CPU kernels of the dice family.
 *
 * Multi-class self-adjusting dice (DSC, dsc_forward and dsc_backward): the [N, C] passes of _softmax_dice.py
 * (its module docstring has the notation and the derivation) in one sweep over the rows. The PyTorch
 * implementation makes about 18 passes over [N, C], each a trip through memory; here a block of rows is read
 * once and its softmax, T split and dense terms are computed while it sits in L1. The [N]-sized parts stay
 * in Python. Binary DL, TL and DSC (dice_binary, at the end): the whole loss of _binary_dice.py in one call.
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
#include <stdlib.h>
#include <string.h>

#ifndef LANES /* rows per vector: set by the build to the CPU's vector width (16 floats for AVX-512, 8 AVX2, 4) */
#define LANES 16
#endif
#define GROUPS_PER_BLOCK 16

int kernel_lanes(void) { return LANES; }

typedef float vf __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(LANES * sizeof(int32_t))));

static inline vf splat(float a) { return (vf){0} + a; }
static inline vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros, as comparisons return) */
static inline vf blend(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }

/* e^x for x <= 88; 0 below -87.3 (where e^x is subnormal); NaN for NaN. */
static inline vf exp_v(vf x) {
    const vf lo = splat(-87.3365447f), round = splat(12582912.0f); /* 1.5 2^23: adding it rounds to an integer */
    const vf xc = blend(x < lo, lo, blend(x > 88.0f, splat(88.0f), x));
    vf n = (xc * 1.44269504088896341f + round) - round;
    n = blend(n >= -127.0f, n, splat(-127.0f)); /* NaN → -127: the integer conversion below stays defined */
    const vf r = xc - n * 0.693359375f + n * 2.12194440e-4f; /* x - n ln 2 in two parts (Cody-Waite) */
    vf y = splat(1.9875691500e-4f);
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    const vi scale = (__builtin_convertvector(n, vi) + 127) << 23; /* 2^n as float bits */
    return blend(x < lo, splat(0.0f), y * (vf)scale);
}

/* log x for normal x > 0 (here x = 1 - p in [1/2, 1]). */
static inline vf log_v(vf x) {
    const vi bits = (vi)x;
    vf e = __builtin_convertvector(((bits >> 23) & 0xff) - 126, vf);
    const vf m = (vf)((bits & 0x007fffff) | 0x3f000000); /* x = m 2^e, m in [1/2, 1) */
    const vi below = m < 0.707106781186547524f;
    e = blend(below, e - 1.0f, e);
    const vf f = blend(below, m + m - 1.0f, m - 1.0f);
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

/* The softmax part of group g (see dsc_forward): sel and values of its rows, and p (T not zeroed) in small. */
static inline void forward_rows(int64_t g, const float *restrict x, const int64_t *restrict t, int64_t N, int64_t C,
                                float alpha, float *restrict small, int64_t *restrict sel, float *restrict values) {
    const float one_plus_alpha = 1.0f + alpha, m_min = 1.0842021724855044e-19f;
    const int64_t n = N - g * LANES < LANES ? N - g * LANES : LANES;
    float *sg = small + g * C * LANES;
    int64_t row[LANES];
    vf tf;
    for (int l = 0; l < LANES; l++) {
        row[l] = g * LANES + (l < n ? l : 0);
        tf[l] = (float)t[row[l]];
    }
    load_rows(sg, x, row, C);
    vf mx = load(sg);
    for (int64_t j = 1; j < C; j++) {
        const vf v = load(sg + j * LANES);
        mx = blend(v > mx, v, mx);
    }
    /* e = e^{x - max} is 1 exactly at the maximum (and where x rounds to it): T = the first such column,
     * and 1 - p_T = (the sum of the other e)/sum, counting the other ties as 1 each (no cancellation) */
    vf sum = splat(0.0f), rest = splat(0.0f), ties = splat(0.0f), first = splat((float)C), e_t = splat(0.0f);
    for (int64_t j = 0; j < C; j++) {
        const vf e = exp_v(load(sg + j * LANES) - mx); /* NaN anywhere in a row makes its sum NaN */
        const vi top = e == 1.0f;
        store(sg + j * LANES, e);
        sum += e;
        rest += blend(top, splat(0.0f), e);
        ties += blend(top, splat(1.0f), splat(0.0f));
        first = blend(top & (first == (float)C), splat((float)j), first);
        e_t = blend(tf == (float)j, e, e_t);
    }
    const vi found = first < (float)C;
    const vf Tf = blend(found, first, splat(0.0f)), inv_sum = 1.0f / sum;
    for (int64_t j = 0; j < C; j++) store(sg + j * LANES, load(sg + j * LANES) * inv_sum);
    /* the per-row values (ROW_VALUES); for t = T, 1 - p_t is not needed (and not exact) */
    const vf p_T = blend(found, inv_sum, sum), p_t = e_t * inv_sum, m = (rest + (ties - 1.0f)) * inv_sum;
    const vf m_c = blend(m > m_min, m, splat(m_min)), q_t = 1.0f - p_t;
    const vi is_T = tf == Tf;
    const vf s_T = p_T * exp_v(alpha * log_v(m_c));
    const vf s_t = blend(is_T, s_T, p_t * exp_v(alpha * log_v(q_t)));
    const vf f_t = blend(is_T, splat(0.0f), 1.0f - alpha * p_t / q_t);
    const vf row_values[8] = {s_t, s_T, blend(is_T, splat(1.0f), splat(0.0f)), f_t, 1.0f - one_plus_alpha * p_T, p_T,
                              1.0f / m_c, m};
    for (int l = 0; l < n; l++) {
        const int64_t i = row[l];
        sel[2 * i] = t[i];
        sel[2 * i + 1] = (int64_t)Tf[l];
        for (int c = 0; c < 8; c++) values[8 * i + c] = row_values[c][l];
    }
}

/* The dense terms of group g (see dsc_forward) from p in small: small = p with T zeroed, psi, and keep Phi
 * added to acc (keep: interleaved like small, or NULL for all ones). */
static inline void forward_dense(int64_t g, int64_t N, int64_t C, float alpha, int k, int mean, float smooth,
                                 const int64_t *restrict sel, const float *restrict keep, float *restrict small,
                                 float *restrict psi, float *restrict acc) {
    const float exponent = k * alpha - 1.0f, one_plus_alpha = 1.0f + alpha;
    const int64_t n = N - g * LANES < LANES ? N - g * LANES : LANES;
    float *sg = small + g * C * LANES, *pg = psi + g * C * LANES;
    vf valid, Tf;
    for (int l = 0; l < LANES; l++) {
        valid[l] = l < n ? 1.0f : 0.0f;
        Tf[l] = (float)sel[2 * (g * LANES + (l < n ? l : 0)) + 1];
    }
    for (int64_t j = 0; j < C; j++) {
        const vf p = blend(Tf == (float)j, splat(0.0f), load(sg + j * LANES));
        vf h = exp_v(exponent * log_v(1.0f - p)) * p; /* 1 - p >= 1/2 (p = 0 at T): exact */
        if (k == 2) h *= p;
        vf phi = h * (1.0f - p), ps = h * (1.0f - one_plus_alpha * p);
        if (mean) { /* l0 = phi/(phi + smooth) and psi smooth/(phi + smooth)^2 */
            const vf inv = 1.0f / (phi + smooth);
            ps *= smooth * inv * inv;
            phi *= inv;
        }
        if (keep) {
            const vf kk = load(keep + (g * C + j) * LANES);
            ps *= kk;
            phi *= kk;
        }
        store(sg + j * LANES, p);
        store(pg + j * LANES, ps);
        store(acc + j * LANES, load(acc + j * LANES) + phi * valid);
    }
}

static inline int any_lane(vi mask) {
    int32_t any = 0;
    for (int l = 0; l < LANES; l++) any |= mask[l];
    return any != 0;
}

/* OHEM for the classes [c0, c1) (one-vs-rest): keep = 1 for the rows with t = c and for the k_c negatives with
 * the highest p_c, ties going to the first rows; 0 elsewhere (keep and small interleaved; tf: t as floats,
 * interleaved [G, LANES], -1 in unused lanes). One scan over the groups (in memory order) with, per class, a
 * min-heap of the k_c best rows so far, ordered by (p, -row): a row enters only if p beats its class's minimum,
 * which after the first rows is rare (one vector comparison per group and class). */
static void ohem_select(const float *restrict small, const float *restrict tf, int64_t G, int64_t C, int64_t c0,
                        int64_t c1, const int64_t *restrict ohem_k, float *restrict keep) {
    int64_t total = 0;
    for (int64_t c = c0; c < c1; c++) total += ohem_k[c];
    float *heap_p = malloc((total + 1) * sizeof(float)); /* (+1: a spare slot, see the sift-down) */
    int64_t *heap_row = malloc((total + 1) * sizeof(int64_t)), *start = malloc((c1 - c0 + 1) * sizeof(int64_t));
    const int ok = heap_p && heap_row && start; /* (out of memory: no negative kept) */
    if (ok) {
        start[0] = 0;
        for (int64_t c = c0; c < c1; c++) start[c - c0 + 1] = start[c - c0] + ohem_k[c];
        for (int64_t h = 0; h <= total; h++) heap_p[h] = -1.0f, heap_row[h] = -1; /* below every p: full heaps */
    }
    for (int64_t g = 0; g < G; g++) {
        const vf tv = load(tf + g * LANES);
        for (int64_t c = c0; c < c1; c++) {
            const vf p = load(small + (g * C + c) * LANES);
            const vi is_c = tv == (float)c;
            store(keep + (g * C + c) * LANES, blend(is_c, splat(1.0f), splat(0.0f)));
            const int64_t k = ok ? ohem_k[c] : 0;
            if (k == 0) continue;
            float *hp = heap_p + start[c - c0];
            int64_t *hr = heap_row + start[c - c0];
            if (!any_lane(~is_c & (tv >= 0.0f) & (p > hp[0]))) continue;
            for (int l = 0; l < LANES; l++) {
                if (is_c[l] || tv[l] < 0.0f || !(p[l] > hp[0])) continue;
                const int64_t row = g * LANES + l;
                int64_t h = 0; /* replace the minimum, sift down (a later row loses ties: the order is (p, -row)) */
                for (;;) {
                    int64_t child = 2 * h + 1;
                    if (child >= k) break;
                    /* the smaller child, without branches (which one it is is unpredictable; hp has one spare
                     * slot, so reading child + 1 = k is safe, and (child + 1 < k) masks it) */
                    child += (child + 1 < k) & ((hp[child + 1] < hp[child]) |
                                                ((hp[child + 1] == hp[child]) & (hr[child + 1] > hr[child])));
                    if (hp[child] > p[l] || (hp[child] == p[l] && hr[child] < row)) break;
                    hp[h] = hp[child], hr[h] = hr[child];
                    h = child;
                }
                hp[h] = p[l], hr[h] = row;
            }
        }
    }
    for (int64_t c = c0; ok && c < c1; c++)
        for (int64_t h = start[c - c0]; h < start[c - c0 + 1]; h++)
            if (heap_row[h] >= 0) keep[((heap_row[h] / LANES) * C + c) * LANES + heap_row[h] % LANES] = 1.0f;
    free(heap_p);
    free(heap_row);
    free(start);
}

/* Forward. In: x [N, C] logits, t [N] targets; ohem_k [C]: how many negatives OHEM keeps per class, or NULL
 * (no OHEM); alpha, k (1 or 2), mean (reduction "mean", needs smooth > 0), smooth. Out (interleaved, see
 * Layout): small = p with the T entry zeroed, psi = keep h (1 - (1 + alpha) p) ("mean": times
 * smooth/(Phi + smooth)^2), where h = (1 - p)^{k alpha - 1} p^k; partial [B, C, LANES] = sums of keep Phi,
 * Phi = h (1 - p) the y = 0 term ("mean": l0 = Phi/(Phi + smooth)). Per row: sel [N, 2] = (t, T),
 * T = argmax (the column with p > 1/2 if there is one; any column is valid otherwise), and values [N, 8] =
 * ROW_VALUES of _softmax_dice.py: p~ at t and T, [t = T], f_t, e_T, p_T, 1/m, m = 1 - p_T (a sum of the
 * other p), with m clamped at sqrt(FLT_MIN) in p~_T and 1/m (the caller redoes the rows below it in log
 * space). With OHEM: keep (interleaved scratch like small) and k_sel [N, 2] = keep at t and T.
 * A row holding NaN, +inf or only -inf gives NaN outputs, as torch.softmax does. */
void dsc_forward(const float *restrict x, const int64_t *restrict t, const int64_t *restrict ohem_k, int64_t N,
                 int64_t C, float alpha, int k, int mean, float smooth, float *restrict small, float *restrict psi,
                 float *restrict keep, float *restrict partial, int64_t *restrict sel, float *restrict values,
                 float *restrict k_sel, int num_threads) {
    const int64_t G = (N + LANES - 1) / LANES, B = (G + GROUPS_PER_BLOCK - 1) / GROUPS_PER_BLOCK;
    if (ohem_k) { /* all softmaxes first: OHEM ranks each class over the whole batch */
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_threads > 1)
        for (int64_t g = 0; g < G; g++) forward_rows(g, x, t, N, C, alpha, small, sel, values);
        float *tf = malloc(G * LANES * sizeof(float));
        if (!tf) { /* (out of memory: NaN loss rather than a wrong one) */
            for (int64_t i = 0; i < 8 * N; i++) values[i] = __builtin_nanf("");
            return;
        }
        for (int64_t i = 0; i < G * LANES; i++) tf[i] = i < N ? (float)t[i] : -1.0f;
        const int64_t per_thread = (C + num_threads - 1) / num_threads; /* (each thread: a range of classes) */
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_threads > 1)
        for (int64_t c0 = 0; c0 < C; c0 += per_thread)
            ohem_select(small, tf, G, C, c0, c0 + per_thread < C ? c0 + per_thread : C, ohem_k, keep);
        free(tf);
        for (int64_t i = 0; i < N; i++) {
            k_sel[2 * i] = 1.0f; /* (t: a positive of its own class) */
            k_sel[2 * i + 1] = keep[((i / LANES) * C + sel[2 * i + 1]) * LANES + i % LANES];
        }
    }
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_threads > 1)
    for (int64_t b = 0; b < B; b++) {
        float *acc = partial + b * C * LANES;
        memset(acc, 0, C * LANES * sizeof(float));
        const int64_t g_end = (b + 1) * GROUPS_PER_BLOCK < G ? (b + 1) * GROUPS_PER_BLOCK : G;
        for (int64_t g = b * GROUPS_PER_BLOCK; g < g_end; g++) {
            if (!ohem_k) forward_rows(g, x, t, N, C, alpha, small, sel, values); /* (while the group is in L1) */
            forward_dense(g, N, C, alpha, k, mean, smooth, sel, ohem_k ? keep : NULL, small, psi, acc);
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

/* ---------------------------------------------------------------------------------------------------------
 * The binary dice family (_binary_dice.py has the formulas): one logit x per position, p = sigmoid(x),
 * targets y in [0, 1], score s = p (alpha = 0) or p (1 - p)^alpha, n = a1 s y, d = s^k (d1 + d2 y) + d3 y +
 * d4 y^k, keep from OHEM. These inputs are vectors, one position per lane; the whole loss is one call
 * (in PyTorch its ~20 small ops cost more in dispatch than in arithmetic). */

#define BINARY_BLOCK 4096 /* positions per partial sum (fixed: the sums do not depend on the thread count) */

/* the first n <= LANES floats (zero-padded) / store them; a full vector is one plain load or store */
static inline vf load_n(const float *p, int64_t n) {
    if (n == LANES) return load(p);
    vf v = splat(0.0f);
    memcpy(&v, p, n * sizeof(float));
    return v;
}
static inline void store_n(float *p, vf v, int64_t n) {
    if (n == LANES) store(p, v);
    else memcpy(p, &v, n * sizeof(float));
}
static inline double sum_lanes(vf v) { double s = 0.0; for (int l = 0; l < LANES; l++) s += v[l]; return s; }

/* p = sigma(x), q = sigma(-x) = 1 - p (both exact: e/(1 + e) and 1/(1 + e) with e = e^{-|x|}), and, for
 * alpha != 0, s = p q^alpha = exp(log p + alpha log q) with log p, log q = min(+-x, 0) - log1p(e), where
 * log1p(e) = log(u) - ((u - 1) - e)/u for u = 1 + e (the correction restores the bits of e that 1 + e
 * rounds off): exact for any finite x. */
static inline void sigmoid_score(vf x, float alpha, vf *p, vf *q, vf *s) {
    const vi neg = x < 0.0f;
    const vf e = exp_v(blend(neg, x, -x)), u = 1.0f + e, inv_u = 1.0f / u;
    *p = blend(neg, e * inv_u, inv_u);
    *q = blend(neg, inv_u, e * inv_u);
    if (alpha == 0.0f) {
        *s = *p;
        return;
    }
    const vf log1p_e = log_v(u) - ((u - 1.0f) - e) * inv_u;
    const vf lp = blend(neg, x, splat(0.0f)) - log1p_e, lq = blend(neg, splat(0.0f), -x) - log1p_e;
    *s = exp_v(lp + alpha * lq);
}

/* The k-th largest (1 <= k <= n) of keys[0..n): a radix select, three histogram passes over the 32-bit keys
 * (11, 11 and 10 bits), the later two over the entries that can still be it (compacted to the front of
 * keys, which is overwritten). Returns the key; *rank = how many entries equal to it are among the k largest. */
static uint32_t kth_largest(uint32_t *keys, int64_t n, int64_t k, int64_t *rank) { /* (n < 2^31) */
    static const int shift[3] = {21, 10, 0}, bits[3] = {11, 11, 10};
    uint32_t prefix = 0;
    for (int pass = 0; pass < 3; pass++) {
        int32_t hist[4][2048] = {{0}}; /* four histograms: consecutive equal bins do not wait on each other */
        const uint32_t digit = (1u << bits[pass]) - 1;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int h = 0; h < 4; h++) hist[h][(keys[i + h] >> shift[pass]) & digit]++;
        for (; i < n; i++) hist[0][(keys[i] >> shift[pass]) & digit]++;
        int b = (int)digit;
        for (int64_t count; b > 0 && k > (count = hist[0][b] + hist[1][b] + hist[2][b] + hist[3][b]); b--) k -= count;
        prefix |= (uint32_t)b << shift[pass];
        int64_t kept = 0; /* the candidates for the next pass: the entries in bin b */
        for (i = 0; i < n; i++) { /* (branch-free: which entries fall in bin b is unpredictable) */
            keys[kept] = keys[i];
            kept += ((keys[i] >> shift[pass]) & digit) == (uint32_t)b;
        }
        n = kept;
    }
    *rank = k;
    return prefix;
}

/* OHEM for one unit: keep every positive (y > 1/2) and the k = min(#negatives, floor(ratio #positives))
 * negatives with the highest p (ties: the first ones); keep[i] = 1 or 0. keys: scratch of n entries.
 * Returns the number kept. */
static int64_t ohem_keep_binary(const float *p, const float *y, int64_t n, float ratio, uint32_t *keys,
                                float *keep) {
    int64_t n_neg = 0;
    for (int64_t i = 0; i < n; i++) { /* a negative's key: p's bits + 1 (p >= 0: monotone, and above 0) */
        uint32_t bits_p;
        memcpy(&bits_p, p + i, sizeof bits_p);
        keys[n_neg] = bits_p + 1u; /* (branch-free: kept only for a negative) */
        n_neg += y[i] <= 0.5f;
    }
    const int64_t n_pos = n - n_neg;
    const int64_t want = (int64_t)((double)n_pos * ratio + 1e-9); /* (+1e-9: floor(0.29 * 100) = 29, as _ohem.py) */
    const int64_t k = want < n_neg ? want : n_neg;
    int64_t ties = 0;
    const uint32_t threshold = k > 0 ? kth_largest(keys, n_neg, k, &ties) : UINT32_MAX;
    /* keep = positive, or a negative above the threshold (keys < 2^31: signed lanes compare right); then the
     * first `ties` negatives equal to it, in order */
    const vi thr = (vi){0} + (int32_t)(threshold > INT32_MAX ? INT32_MAX : threshold);
    for (int64_t i = 0; i < n; i += LANES) {
        const int64_t m = n - i < LANES ? n - i : LANES;
        const vi pos = load_n(y + i, m) > 0.5f, key = (vi)load_n(p + i, m) + 1;
        store_n(keep + i, blend(pos | (key > thr), splat(1.0f), splat(0.0f)), m);
    }
    for (int64_t i = 0; i < n && ties > 0 && threshold != UINT32_MAX; i++) {
        uint32_t key;
        memcpy(&key, p + i, sizeof key);
        if (y[i] <= 0.5f && key + 1u == threshold) keep[i] = 1.0f, ties--;
    }
    return n_pos + k;
}

enum { SCORES, SUMS, GRADIENT }; /* the passes of dice_binary */

/* One pass over positions [begin, end) of dice_binary (see there). SCORES: store s, ds/dx and p; SUMS: add
 * (sum keep s y, sum keep d), or for "mean" sum keep (1 - r), to acc (and store s, ds/dx for the gradient);
 * GRADIENT: grad from the stored s, ds/dx and the set-level factors dA, dB ("batch") or w ("mean"). */
static inline void binary_pass(int pass, const float *restrict x, const float *restrict y, int64_t begin,
                               int64_t end, const float *params, int k, int mean, int ohem, float *restrict work,
                               int64_t N, float dA, float dB, float w, float *restrict grad, vf *acc) {
    const float alpha = params[0], a1 = params[1], d1 = params[2], d2 = params[3], d3 = params[4], d4 = params[5];
    const float smooth = params[6];
    float *s_buf = work, *dsdx_buf = work + N, *p_buf = work + 2 * N, *keep = work + 3 * N;
    vf lane;
    for (int l = 0; l < LANES; l++) lane[l] = (float)l;
    for (int64_t i = begin; i < end; i += LANES) {
        const int64_t m = end - i < LANES ? end - i : LANES; /* (the last step of a block may be partial) */
        vf s, dsdx;
        if (pass == SCORES || (pass == SUMS && !ohem)) {
            vf p, q;
            sigmoid_score(load_n(x + i, m), alpha, &p, &q, &s);
            dsdx = s * (q - alpha * p); /* ds/dx = s (q - alpha p) */
            store_n(s_buf + i, s, m), store_n(dsdx_buf + i, dsdx, m);
            if (pass == SCORES) {
                store_n(p_buf + i, p, m);
                continue;
            }
        } else {
            s = load_n(s_buf + i, m), dsdx = load_n(dsdx_buf + i, m);
        }
        const vf yv = load_n(y + i, m), kv = ohem ? load_n(keep + i, m) : blend(lane < (float)m, splat(1.0f), splat(0.0f));
        const vf dcoef = d1 + d2 * yv, sk = k == 2 ? s * s : s;
        const vf d = sk * dcoef + d3 * yv + d4 * (k == 2 ? yv * yv : yv);
        const vf dprime = k == 2 ? 2.0f * s * dcoef : dcoef; /* d'(s) */
        if (!mean) {
            if (pass == SUMS) acc[0] += kv * s * yv, acc[1] += kv * d;
            else store_n(grad + i, kv * (dA * yv + dB * dprime) * dsdx, m);
        } else { /* r = (a1 s y + smooth)/(d + smooth); smooth = 0 and d = 0: r = 1, zero gradient */
            const vi empty = (d + smooth) == 0.0f;
            const vf inv = blend(empty, splat(0.0f), 1.0f / (d + smooth));
            const vf r = blend(empty, splat(1.0f), (a1 * s * yv + smooth) * inv);
            if (pass == SUMS) acc[0] += kv * (1.0f - r);
            else store_n(grad + i, kv * w * (r * dprime - a1 * yv) * inv * dsdx, m);
        }
    }
}

/* The binary loss and its gradient. params = (alpha, a1, d1, d2, d3, d4, smooth, ohem_ratio); k (1 or 2);
 * mean (reduction "mean", else "batch"). work: scratch of 5 N floats (s, ds/dx, p, keep, OHEM keys). Out: *loss, and
 * grad [N] = dL/dx unless grad is NULL. smooth = 0: a ratio with a zero denominator counts as 1, with zero
 * gradient. Sums are per block of BINARY_BLOCK positions, added in block order. */
void dice_binary(const float *restrict x, const float *restrict y, int64_t N, const float *params, int k, int mean,
                 float *restrict work, float *restrict loss, float *restrict grad, int num_threads) {
    const float a1 = params[1], smooth = params[6], ratio = params[7];
    const int ohem = ratio > 0.0f, threads = N >= 8 * BINARY_BLOCK ? num_threads : 1;
    const int64_t B = (N + BINARY_BLOCK - 1) / BINARY_BLOCK;
    double *partial = calloc(2 * (B > 0 ? B : 1), sizeof(double));
    if (!partial) {
        *loss = __builtin_nanf("");
        return;
    }
    float *keep = work + 3 * N;
    int64_t kept = N;
    if (ohem) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int64_t b = 0; b < B; b++)
            binary_pass(SCORES, x, y, b * BINARY_BLOCK, (b + 1) * BINARY_BLOCK < N ? (b + 1) * BINARY_BLOCK : N,
                        params, k, mean, ohem, work, N, 0, 0, 0, grad, NULL);
        kept = ohem_keep_binary(work + 2 * N, y, N, ratio, (uint32_t *)(work + 4 * N), keep);
    }
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < B; b++) {
        vf acc[2] = {splat(0.0f), splat(0.0f)};
        binary_pass(SUMS, x, y, b * BINARY_BLOCK, (b + 1) * BINARY_BLOCK < N ? (b + 1) * BINARY_BLOCK : N, params,
                    k, mean, ohem, work, N, 0, 0, 0, grad, acc);
        partial[2 * b] = sum_lanes(acc[0]), partial[2 * b + 1] = sum_lanes(acc[1]);
    }
    double sum0 = 0.0, sum1 = 0.0, count = (double)kept;
    for (int64_t b = 0; b < B; b++) sum0 += partial[2 * b], sum1 += partial[2 * b + 1];
    free(partial);
    const double A = a1 * sum0 + smooth, Bs = sum1 + smooth; /* ("batch") */
    const double r = Bs != 0.0 ? A / Bs : 1.0, inv_B = Bs != 0.0 ? 1.0 / Bs : 0.0, w = 1.0 / (count > 1.0 ? count : 1.0);
    *loss = (float)(mean ? sum0 * w : 1.0 - r);
    if (!grad) return;
    /* dL/ds: "batch" -a1 y/B + (A/B^2) d'(s) = dA y + dB d'(s); "mean" w (r_i d'(s) - a1 y)/(d + smooth) */
    const float dA = (float)(-a1 * inv_B), dB = (float)(r * inv_B);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < B; b++)
        binary_pass(GRADIENT, x, y, b * BINARY_BLOCK, (b + 1) * BINARY_BLOCK < N ? (b + 1) * BINARY_BLOCK : N,
                    params, k, mean, ohem, work, N, dA, dB, (float)w, grad, NULL);
}

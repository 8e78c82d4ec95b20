#include "ops/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace wick::ref {

Vec matmul(const Vec& a, const Vec& b, const Vec* c0, const Vec* bias, int64_t batch, int64_t M, int64_t N, int64_t K,
           bool ta, bool tb, bool b_batched, double alpha, double beta) {
  Vec c(static_cast<size_t>(batch * M * N));
  // Element strides of op(a)[i, k] and op(b)[k, j].
  const int64_t ai = ta ? 1 : K, ak = ta ? M : 1, bk = tb ? 1 : N, bj = tb ? K : 1;
  for (int64_t z = 0; z < batch; z++) {
    const double* A = a.data() + z * M * K;
    const double* Bm = b.data() + (b_batched ? z * K * N : 0);
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t kk = 0; kk < K; kk++) s += A[i * ai + kk * ak] * Bm[kk * bk + j * bj];
        const int64_t o = (z * M + i) * N + j;
        c[o] = alpha * s + (beta != 0.0 ? beta * (*c0)[o] : 0.0) + (bias ? (*bias)[j] : 0.0);
      }
  }
  return c;
}

Vec embedding(const Vec& ids, const Vec& table, int64_t C) {
  Vec out(ids.size() * C);
  for (size_t n = 0; n < ids.size(); n++)
    for (int64_t c = 0; c < C; c++) out[n * C + c] = table[static_cast<int64_t>(ids[n]) * C + c];
  return out;
}

void rms_norm(const Vec& x, const Vec& w, int64_t C, double eps, Vec& y, Vec& rstd) {
  const int64_t N = static_cast<int64_t>(x.size()) / C;
  y.assign(x.size(), 0);
  rstd.assign(N, 0);
  for (int64_t n = 0; n < N; n++) {
    double ss = 0;
    for (int64_t c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    rstd[n] = 1.0 / std::sqrt(ss / C + eps);
    for (int64_t c = 0; c < C; c++) y[n * C + c] = w[c] * x[n * C + c] * rstd[n];
  }
}

void layer_norm(const Vec& x, const Vec& w, const Vec& b, int64_t C, double eps, Vec& y, Vec& mean, Vec& rstd) {
  const int64_t N = static_cast<int64_t>(x.size()) / C;
  y.assign(x.size(), 0);
  mean.assign(N, 0);
  rstd.assign(N, 0);
  for (int64_t n = 0; n < N; n++) {
    double mu = 0, var = 0;
    for (int64_t c = 0; c < C; c++) mu += x[n * C + c];
    mu /= C;
    for (int64_t c = 0; c < C; c++) var += (x[n * C + c] - mu) * (x[n * C + c] - mu);
    mean[n] = mu;
    rstd[n] = 1.0 / std::sqrt(var / C + eps);
    for (int64_t c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - mu) * rstd[n] * w[c] + b[c];
  }
}

Vec softmax(const Vec& x, int64_t C) {
  Vec y(x.size());
  for (size_t r = 0; r < x.size() / C; r++) {
    const double* xr = x.data() + r * C;
    const double mx = *std::max_element(xr, xr + C);
    double z = 0;
    for (int64_t c = 0; c < C; c++) z += std::exp(xr[c] - mx);
    for (int64_t c = 0; c < C; c++) y[r * C + c] = std::exp(xr[c] - mx) / z;
  }
  return y;
}

Vec rope(const Vec& x, const Vec& pos, int64_t B, int64_t T, int64_t H, int64_t D, float theta) {
  Vec y(x.size());
  const int64_t half = D / 2;
  for (int64_t bt = 0; bt < B * T; bt++)
    for (int64_t i = 0; i < half; i++) {
      // inv_freq = 1 / theta^(float(2i) / D) and angle = float(pos) * inv_freq, each an f32 operation.
      const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(D));
      const double angle = static_cast<float>(pos[bt]) * inv_freq;
      const double c = std::cos(angle), s = std::sin(angle);
      for (int64_t h = 0; h < H; h++) {
        const int64_t o = (bt * H + h) * D;
        y[o + i] = x[o + i] * c - x[o + half + i] * s;
        y[o + half + i] = x[o + half + i] * c + x[o + i] * s;
      }
    }
  return y;
}

Vec swiglu(const Vec& gate, const Vec& up) {
  Vec out(gate.size());
  for (size_t i = 0; i < gate.size(); i++) out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  return out;
}

Vec geglu(const Vec& gate, const Vec& up) {
  Vec out(gate.size());
  const double beta = std::sqrt(2.0 / 3.14159265358979323846);
  for (size_t i = 0; i < gate.size(); i++) {
    const double g = gate[i];
    out[i] = 0.5 * g * (1.0 + std::tanh(beta * (g + 0.044715 * g * g * g))) * up[i];
  }
  return out;
}

void attention(const Vec& q, const Vec& k, const Vec& v, const Vec* seg, const AttnDims& d, double scale, Vec& out,
               Vec& lse) {
  out.assign(q.size(), 0);
  lse.assign(d.B * d.H * d.T, 0);
  const int64_t group = d.H / d.Hkv;
  std::vector<double> sc(d.kv_len);
  for (int64_t b = 0; b < d.B; b++)
    for (int64_t h = 0; h < d.H; h++)
      for (int64_t t = 0; t < d.T; t++) {
        const int64_t pos = d.kv_len - d.T + t, kh = h / group;
        const double* qr = q.data() + ((b * d.T + t) * d.H + h) * d.D;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t s = 0; s <= pos; s++) {
          const bool seen = (!seg || (*seg)[b * d.T + s] == (*seg)[b * d.T + t]) && (d.window <= 0 || s > pos - d.window);
          sc[s] = -std::numeric_limits<double>::infinity();
          if (!seen) continue;
          double dot = 0;
          for (int64_t i = 0; i < d.D; i++) dot += qr[i] * k[((b * d.S + s) * d.Hkv + kh) * d.D + i];
          sc[s] = dot * scale;
          mx = std::max(mx, sc[s]);
        }
        double z = 0;
        for (int64_t s = 0; s <= pos; s++) z += std::isinf(sc[s]) ? 0.0 : std::exp(sc[s] - mx);
        double* o = out.data() + ((b * d.T + t) * d.H + h) * d.D;
        for (int64_t s = 0; s <= pos; s++) {
          if (std::isinf(sc[s])) continue;
          const double p = std::exp(sc[s] - mx) / z;
          for (int64_t i = 0; i < d.D; i++) o[i] += p * v[((b * d.S + s) * d.Hkv + kh) * d.D + i];
        }
        lse[(b * d.H + h) * d.T + t] = mx + std::log(z);
      }
}

void cross_entropy(const Vec& logits, const Vec& targets, int64_t V, Vec& losses, Vec& lse) {
  const size_t N = targets.size();
  losses.assign(N, 0);
  lse.assign(N, 0);
  for (size_t n = 0; n < N; n++) {
    const double* x = logits.data() + n * V;
    const double mx = *std::max_element(x, x + V);
    double z = 0;
    for (int64_t i = 0; i < V; i++) z += std::exp(x[i] - mx);
    lse[n] = mx + std::log(z);
    if (targets[n] != -100) losses[n] = lse[n] - x[static_cast<int64_t>(targets[n])];
  }
}

void adamw(Vec& p, const Vec& g, Vec& m, Vec& v, double lr, double beta1, double beta2, double eps, double wd,
           int64_t step, double grad_scale) {
  const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
  for (size_t i = 0; i < p.size(); i++) {
    const double gi = g[i] * grad_scale;
    p[i] -= lr * wd * p[i];
    m[i] = beta1 * m[i] + (1 - beta1) * gi;
    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
    p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
  }
}

double sum_squares(const std::vector<Vec>& xs) {
  double s = 0;
  for (const Vec& x : xs)
    for (double e : x) s += e * e;
  return s;
}

double round_mantissa(double x, int mant_bits) {
  if (x == 0 || !std::isfinite(x)) return x;
  int e = 0;
  const double f = std::frexp(x, &e);               // x = f * 2^e, 0.5 <= |f| < 1
  const double scaled = std::ldexp(f, mant_bits + 1);  // integer part holds the kept bits
  return std::ldexp(std::nearbyint(scaled), e - mant_bits - 1);  // nearbyint: ties to even by default
}

}  // namespace wick::ref

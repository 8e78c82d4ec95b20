#include "train/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace wick {

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += ch;
    }
  }
  return o;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> t;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return t;
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  // Integer multiples of step (k * step, not repeated addition, so labels stay exact). A range of a few ulps
  // far from zero gives a k past 2^53, where k += 1 stops counting: the tick count is bounded.
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9 && t.size() < 64; k += 1)
    t.push_back(k * step);
  return t;
}

void downsample_mean(std::vector<double>& x, std::vector<double>& y, size_t n) {
  if (x.size() <= n || n == 0) return;
  std::vector<double> ox, oy;
  const size_t N = x.size();
  for (size_t b = 0; b < n; b++) {
    const size_t i0 = b * N / n, i1 = (b + 1) * N / n;
    double sx = 0, sy = 0;
    for (size_t i = i0; i < i1; i++) sx += x[i], sy += y[i];
    ox.push_back(sx / (i1 - i0));
    oy.push_back(sy / (i1 - i0));
  }
  x.swap(ox);
  y.swap(oy);
}

namespace {

std::string num(double v) {  // coordinates: two decimals are plenty at SVG pixel scale
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// Tick labels of one axis share a style: scientific when its largest tick is tiny or huge (an lr axis
// reads 5.0e-05 1.0e-04 ...), else fixed with enough decimals to tell ticks apart.
std::string label(double v, double step, double max_abs) {
  char b[32];
  if (v == 0) return "0";
  if (max_abs >= 1e5 || max_abs < 1e-2) {
    std::snprintf(b, sizeof b, "%.1e", v);
  } else {
    const int dec = step >= 1 ? 0 : std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(b, sizeof b, "%.*f", dec, v);
  }
  return b;
}

}  // namespace

std::string svg_line_chart(const std::vector<ChartSeries>& in, const ChartOptions& opt) {
  // Drop non-finite points, average long series, find the data range.
  std::vector<ChartSeries> series = in;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (auto& s : series) {
    std::vector<double> fx, fy;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); i++)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) fx.push_back(s.x[i]), fy.push_back(s.y[i]);
    downsample_mean(fx, fy, opt.max_points);
    s.x.swap(fx);
    s.y.swap(fy);
    for (size_t i = 0; i < s.x.size(); i++) {
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  }
  const int W = opt.width, H = opt.height, ml = 80, mr = 20, mt = 30, mb = 45;
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(W) + "\" height=\"" +
                  std::to_string(H) + "\" viewBox=\"0 0 " + std::to_string(W) + " " + std::to_string(H) +
                  "\" role=\"img\" aria-label=\"" + html_escape(opt.title) + "\">\n";
  o += "<text x=\"" + std::to_string(W / 2) + "\" y=\"18\" text-anchor=\"middle\" class=\"title\">" +
       html_escape(opt.title) + "</text>\n";
  if (!std::isfinite(x0)) {
    o += "<text x=\"" + std::to_string(W / 2) + "\" y=\"" + std::to_string(H / 2) +
         "\" text-anchor=\"middle\">no data</text>\n</svg>\n";
    return o;
  }
  // A flat range gets some height; a single step some width.
  if (x1 == x0) x0 -= 1, x1 += 1;
  // Flat, or flat but for rounding (a smoothed loss one ulp from the raw one): give it some height.
  if (y1 - y0 <= 1e-9 * std::max(std::fabs(y0), std::fabs(y1))) {
    const double pad = std::fabs(y0) > 0 ? std::fabs(y0) * 0.1 : 1.0;
    y0 -= pad, y1 += pad;
  } else {
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
  }
  const double pw = W - ml - mr, ph = H - mt - mb;
  auto px = [&](double x) { return ml + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return mt + (1 - (y - y0) / (y1 - y0)) * ph; };

  // Axes, grid and tick labels.
  o += "<g class=\"axes\" stroke=\"#444\" stroke-width=\"1\">\n";
  o += "<line x1=\"" + num(ml) + "\" y1=\"" + num(mt + ph) + "\" x2=\"" + num(ml + pw) + "\" y2=\"" + num(mt + ph) + "\"/>\n";
  o += "<line x1=\"" + num(ml) + "\" y1=\"" + num(mt) + "\" x2=\"" + num(ml) + "\" y2=\"" + num(mt + ph) + "\"/>\n";
  o += "</g>\n<g class=\"ticks\" font-size=\"11\" fill=\"#333\">\n";
  const std::vector<double> xt = nice_ticks(x0, x1, 8), yt = nice_ticks(y0, y1, 5);
  const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
  double xm = 0, ym = 0;
  for (double t : xt) xm = std::max(xm, std::fabs(t));
  for (double t : yt) ym = std::max(ym, std::fabs(t));
  for (double t : xt) {
    o += "<line x1=\"" + num(px(t)) + "\" y1=\"" + num(mt + ph) + "\" x2=\"" + num(px(t)) + "\" y2=\"" +
         num(mt + ph + 4) + "\" stroke=\"#444\"/>";
    o += "<text x=\"" + num(px(t)) + "\" y=\"" + num(mt + ph + 16) + "\" text-anchor=\"middle\">" + label(t, xs, xm) + "</text>\n";
  }
  for (double t : yt) {
    o += "<line x1=\"" + num(ml) + "\" y1=\"" + num(py(t)) + "\" x2=\"" + num(ml + pw) + "\" y2=\"" + num(py(t)) +
         "\" stroke=\"#e4e4e4\"/>";
    o += "<text x=\"" + num(ml - 6) + "\" y=\"" + num(py(t) + 4) + "\" text-anchor=\"end\">" + label(t, ys, ym) + "</text>\n";
  }
  o += "</g>\n";
  o += "<text x=\"" + num(ml + pw / 2) + "\" y=\"" + num(H - 6) + "\" text-anchor=\"middle\" font-size=\"12\">" +
       html_escape(opt.x_label) + "</text>\n";
  o += "<text transform=\"translate(14 " + num(mt + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" +
       html_escape(opt.y_label) + "</text>\n";

  // Series, then the legend.
  for (const auto& s : series) {
    if (s.x.empty()) continue;
    o += "<polyline class=\"" + html_escape(s.css) + "\" fill=\"none\" stroke=\"" + html_escape(s.color) +
         "\" stroke-width=\"" + num(s.width) + "\" points=\"";
    for (size_t i = 0; i < s.x.size(); i++) {
      if (i) o += ' ';
      o += num(px(s.x[i]));
      o += ',';
      o += num(py(s.y[i]));
    }
    o += "\"/>\n";
    if (s.markers) {
      o += "<g class=\"" + html_escape(s.css) + "-markers\" fill=\"" + html_escape(s.color) + "\">";
      for (size_t i = 0; i < s.x.size(); i++) o += "<circle cx=\"" + num(px(s.x[i])) + "\" cy=\"" + num(py(s.y[i])) + "\" r=\"3\"/>";
      o += "</g>\n";
    }
  }
  int ly = mt + 4;
  for (const auto& s : series) {
    if (s.x.empty()) continue;
    o += "<g class=\"legend\"><line x1=\"" + num(ml + pw - 190) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(ml + pw - 170) +
         "\" y2=\"" + num(ly) + "\" stroke=\"" + html_escape(s.color) + "\" stroke-width=\"2\"/><text x=\"" +
         num(ml + pw - 165) + "\" y=\"" + num(ly + 4) + "\" font-size=\"11\">" + html_escape(s.name) + "</text></g>\n";
    ly += 16;
  }
  o += "</svg>\n";
  return o;
}

}  // namespace wick

// report.html from a synthetic metrics.jsonl: the SVG polylines carry one point per record, HTML in the
// settings is escaped, the document is well-formed XML (xmllint when installed, structural checks always),
// and the summary finds the best eval loss.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/rng.h"
#include "io/safetensors.h"
#include "train/report.h"
#include "train/schedule.h"
#include "train/svg_chart.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wick {
namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("wick_report_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The "points" attribute of the polyline with this class (empty when absent).
// (String search, not std::regex: libstdc++'s regex recurses per character and overflows the stack on
// attributes this long.)
std::string points_of(const std::string& html, const std::string& css) {
  const size_t tag = html.find("<polyline class=\"" + css + "\"");
  if (tag == std::string::npos) return "";
  const size_t end = html.find('>', tag);
  const size_t p = html.find("points=\"", tag);
  if (p == std::string::npos || p > end) return "";
  const size_t q = html.find('"', p + 8);
  return html.substr(p + 8, q - (p + 8));
}
size_t count_points(const std::string& pts) {
  if (pts.empty()) return 0;
  std::istringstream ss(pts);
  size_t n = 0;
  for (std::string p; ss >> p;) {
    EXPECT_NE(p.find(','), std::string::npos) << p;
    n++;
  }
  return n;
}
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n++;
  return n;
}

struct Synthetic {
  int n_train = 37;
  std::vector<double> eval_loss;
  std::vector<int64_t> eval_step;
  int64_t tokens = 0;
};

// Writes metrics.jsonl the way the Trainer does, with eval records between and one torn line at the end.
Synthetic write_metrics(const fs::path& dir, int n_train, uint64_t seed) {
  Synthetic s;
  s.n_train = n_train;
  Rng rng(seed);
  Schedule sched{ScheduleKind::Cosine, 3, n_train};
  std::ofstream f(dir / "metrics.jsonl");
  for (int i = 1; i <= n_train; i++) {
    const int64_t tok = 100 + static_cast<int64_t>(rng.uniform() * 50);
    s.tokens += tok;
    f << json{{"step", i}, {"epoch", i / 10.0}, {"loss", 3.0 * std::exp(-i / 20.0) + 0.3 * rng.uniform()},
              {"grad_norm", 1 + rng.uniform()}, {"lr", sched.lr_at(i - 1, 2e-4)}, {"tokens", tok},
              {"tokens_per_s", 1000.0}, {"counted_tokens", tok - 3}}
             .dump()
      << "\n";
    if (i % 10 == 0) {
      const double e = 2.5 + rng.uniform();
      s.eval_loss.push_back(e);
      s.eval_step.push_back(i);
      f << json{{"step", i}, {"eval_loss", e}, {"eval_ppl", std::exp(e)}}.dump() << "\n";
    }
  }
  f << "{\"step\": 38, \"loss\": 1.2";  // torn by a crash
  return s;
}

TEST(Report, PolylinesHaveOnePointPerRecord) {
  const fs::path d = temp_dir("points");
  const Synthetic s = write_metrics(d, 37, 11);
  write_report(d.string(), json{{"r", 16}, {"lr", 2e-4}, {"total_steps", 37}});
  const std::string html = io::read_file((d / "report.html").string());
  EXPECT_EQ(count_points(points_of(html, "loss")), 37u);
  EXPECT_EQ(count_points(points_of(html, "loss-smooth")), 37u);
  EXPECT_EQ(count_points(points_of(html, "lr")), 37u);
  EXPECT_EQ(count_points(points_of(html, "grad-norm")), 37u);
  EXPECT_EQ(count_points(points_of(html, "eval-loss")), s.eval_loss.size());
  EXPECT_EQ(count(html, "<circle "), s.eval_loss.size());  // eval points are marked
  EXPECT_FALSE(fs::exists(d / "report.html.tmp"));
  fs::remove_all(d);
}

TEST(Report, SummaryFromMetrics) {
  const fs::path d = temp_dir("summary");
  const Synthetic s = write_metrics(d, 37, 12);
  const RunMetrics m = read_metrics((d / "metrics.jsonl").string());
  EXPECT_EQ(m.step.size(), 37u);
  EXPECT_EQ(m.last_step, 37);
  EXPECT_EQ(m.tokens, s.tokens);
  EXPECT_EQ(m.bad_lines, 1);
  EXPECT_NEAR(m.step_seconds, s.tokens / 1000.0, 1e-9);
  const size_t best = std::min_element(s.eval_loss.begin(), s.eval_loss.end()) - s.eval_loss.begin();
  EXPECT_EQ(m.best_eval_step, s.eval_step[best]);
  EXPECT_DOUBLE_EQ(m.best_eval_loss, s.eval_loss[best]);
  write_report(d.string(), json::object());
  const std::string html = io::read_file((d / "report.html").string());
  char want[64];
  std::snprintf(want, sizeof want, "%.4f at step %lld", s.eval_loss[best], static_cast<long long>(s.eval_step[best]));
  EXPECT_NE(html.find(want), std::string::npos) << want;
  EXPECT_NE(html.find("unreadable metrics lines"), std::string::npos);
  fs::remove_all(d);
}

TEST(Report, EscapesSettingsAndIsWellFormed) {
  const fs::path d = temp_dir("escape") / "run<1>";
  fs::create_directories(d);
  write_metrics(d, 9, 13);
  const json settings = {{"model", "/models/<script>alert('x')</script>"}, {"data", "a&b \"quoted\""},
                         {"targets", "q_proj,v_proj"}, {"zz_extra", {1, 2, 3}}};
  write_report(d.string(), settings);
  const std::string html = io::read_file((d / "report.html").string());
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("/models/&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a&amp;b &quot;quoted&quot;"), std::string::npos);
  EXPECT_NE(html.find("run&lt;1&gt;"), std::string::npos);  // the title names the folder, escaped
  EXPECT_NE(html.find("<td>1,2,3</td>"), std::string::npos);
  // Structure: one document, balanced tables and charts, no script and no external resource.
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "<svg "), count(html, "</svg>"));
  EXPECT_EQ(count(html, "<svg "), 3u);
  EXPECT_EQ(count(html, "<table"), count(html, "</table>"));
  EXPECT_EQ(count(html, "<tr>"), count(html, "</tr>"));
  EXPECT_EQ(count(html, "</html>"), 1u);
  EXPECT_EQ(html.find("http://www.w3.org/2000/svg") , html.find("http"));  // the SVG namespace is the only URL
  // An XML parser accepts it (the page is written as well-formed XHTML-compatible HTML).
  if (std::system("command -v xmllint > /dev/null 2>&1") == 0) {
    const std::string cmd = "xmllint --noout '" + (d / "report.html").string() + "' 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "xmllint rejected " << (d / "report.html");
  }
  fs::remove_all(d.parent_path());
}

TEST(Report, LongRunsAreAveragedDownAndEmptyRunsSayNoData) {
  const fs::path d = temp_dir("long");
  write_metrics(d, 5000, 14);
  write_report(d.string(), json::object());
  std::string html = io::read_file((d / "report.html").string());
  EXPECT_EQ(count_points(points_of(html, "loss")), 2000u);
  fs::remove(d / "metrics.jsonl");
  write_report(d.string(), json::object());  // a run stopped before its first step
  html = io::read_file((d / "report.html").string());
  EXPECT_EQ(count(html, "no data"), 3u);
  EXPECT_EQ(html.find("<polyline"), std::string::npos);
  fs::remove_all(d);
}

TEST(Report, DownsampleMeanKeepsBucketMeans) {
  Rng rng(5);
  std::vector<double> x, y;
  for (int i = 0; i < 1001; i++) x.push_back(i), y.push_back(rng.uniform());
  const std::vector<double> y0 = y;
  downsample_mean(x, y, 10);
  ASSERT_EQ(y.size(), 10u);
  // Bucket b holds [b*1001/10, (b+1)*1001/10).
  for (size_t b = 0; b < 10; b++) {
    const size_t i0 = b * 1001 / 10, i1 = (b + 1) * 1001 / 10;
    double sum = 0;
    for (size_t i = i0; i < i1; i++) sum += y0[i];
    EXPECT_NEAR(y[b], sum / (i1 - i0), 1e-12);
    EXPECT_NEAR(x[b], (i0 + i1 - 1) / 2.0, 1e-9);
  }
}

TEST(Report, NiceTicksAreRoundAndInside) {
  Rng rng(6);
  for (int t = 0; t < 200; t++) {
    // Spans from 1e-6 to 1e5, offset from 0 by up to 50 spans (a loss curve, an lr schedule, step counts).
    const double span = std::pow(10.0, static_cast<int>(rng.uniform() * 12) - 6) * (0.1 + rng.uniform());
    const double lo = (rng.uniform() - 0.5) * 100 * span, hi = lo + span;
    const std::vector<double> ticks = nice_ticks(lo, hi, 5);
    ASSERT_GE(ticks.size(), 2u) << lo << " " << hi;
    ASSERT_LE(ticks.size(), 11u) << lo << " " << hi;
    const double step = ticks[1] - ticks[0];
    const double mant = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    EXPECT_TRUE(std::fabs(mant - 1) < 1e-6 || std::fabs(mant - 2) < 1e-6 || std::fabs(mant - 5) < 1e-6) << step;
    for (size_t i = 0; i < ticks.size(); i++) {
      EXPECT_GE(ticks[i], lo - step * 1e-6);
      EXPECT_LE(ticks[i], hi + step * 1e-6);
      if (i) EXPECT_NEAR(ticks[i] - ticks[i - 1], step, step * 1e-6);
    }
  }
  EXPECT_TRUE(nice_ticks(1, 1).empty());
}

// A run stopped after one step: the smoothed loss can sit one ulp from the raw one (seen under -O1 with
// ASan), a range whose tick multiples lie past 2^53, where a counting loop never ends.
TEST(Report, RangeOfOneUlpEndsAndDrawsAFlatChart) {
  const double y = 6.8922, y2 = std::nextafter(y, 10.0);
  EXPECT_LE(nice_ticks(y, y2, 5).size(), 64u);
  ChartSeries a, b;
  a.name = "raw";
  a.x = {1};
  a.y = {y};
  b.name = "smoothed";
  b.x = {1};
  b.y = {y2};
  const std::string svg = svg_line_chart({a, b}, {"loss", "step", "loss"});
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_LT(svg.size(), 100000u);
}

TEST(Report, SettingsRowsPutKnownKeysFirst) {
  const json s = {{"zeta", 1}, {"lr", 0.0002}, {"model", "m"}, {"r", 16}, {"alpha", 32.0}, {"shuffle", true}};
  const auto rows = settings_rows(s);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0], (std::pair<std::string, std::string>{"model", "m"}));
  EXPECT_EQ(rows[1], (std::pair<std::string, std::string>{"r", "16"}));
  EXPECT_EQ(rows[2], (std::pair<std::string, std::string>{"alpha", "32"}));
  EXPECT_EQ(rows[3], (std::pair<std::string, std::string>{"lr", "0.0002"}));
  EXPECT_EQ(rows[4], (std::pair<std::string, std::string>{"shuffle", "true"}));
  EXPECT_EQ(rows[5], (std::pair<std::string, std::string>{"zeta", "1"}));
}

TEST(Report, HtmlEscape) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

}  // namespace
}  // namespace wick

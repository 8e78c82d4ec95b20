// Line charts as inline SVG for report.html: hand-built polylines with axes, tick labels and a legend.
// No JavaScript, no external resources; the SVG is valid inside HTML5 and as XML.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick {

struct ChartSeries {
  std::string name;     // legend text (escaped when drawn)
  std::string css;      // class of the polyline, e.g. "loss" (tests find series by it)
  std::string color;    // stroke colour, e.g. "#1f77b4"
  std::vector<double> x, y;  // same length; non-finite points are dropped
  bool markers = false;      // also a circle per point (sparse series such as eval loss)
  double width = 1.5;
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 760, height = 300;
  size_t max_points = 2000;  // longer series are averaged in equal buckets down to this many points
};

std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& opt);

// Tick positions for [lo, hi]: multiples of 1, 2 or 5 x 10^k, about `target` of them, inside the range.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// Mean of each of n equal buckets of (x, y); unchanged when x.size() <= n.
void downsample_mean(std::vector<double>& x, std::vector<double>& y, size_t n);

std::string html_escape(const std::string& s);  // & < > " '

}  // namespace wick

#include "common/units.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace pipecast::ir {
namespace {

struct UnitScale {
  std::string_view unit;
  double scale;  // multiplier from the unit to the base unit
};

// 2^63 as a double: the first value that does not fit in int64.
constexpr double kInt64Limit = 9223372036854775808.0;

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A number followed by an optional unit, e.g. "1.5" and "ms". `negative` is set when the text
// starts with '-' (the caller rejects it with a message that says so).
struct Quantity {
  double value = 0;
  bool negative = false;
  std::string_view unit;
};

// Splits "1.5e3 ms" into 1500 and "ms". Accepts digits with an optional fraction and exponent;
// returns nullopt when there is no number at the start.
std::optional<Quantity> SplitQuantity(std::string_view text) {
  std::string_view s = Trim(text);
  Quantity q;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    q.negative = s[i] == '-';
    ++i;
  }
  const size_t number_begin = i;
  size_t digits = 0;
  while (i < s.size() && IsDigit(s[i])) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDigit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  // An exponent only when 'e' is followed by digits, so "1EFLOPS" keeps its unit.
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && IsDigit(s[j])) {
      while (j < s.size() && IsDigit(s[j])) ++j;
      i = j;
    }
  }
  const std::string_view number = s.substr(number_begin, i - number_begin);
  const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), q.value);
  if (ec == std::errc::result_out_of_range) {
    q.value = HUGE_VAL;  // reported as "too large" by the caller
  } else if (ec != std::errc() || ptr != number.data() + number.size()) {
    return std::nullopt;
  }
  q.unit = Trim(s.substr(i));
  return q;
}

std::string Quote(std::string_view text) {
  // Keep messages one line and bounded even for binary garbage (fuzzed input).
  constexpr size_t kMaxShown = 60;
  std::string out;
  for (char c : text.substr(0, kMaxShown)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return "'" + out + "'";
}

// Parses a quantity whose unit must be in `units` (the empty unit is listed explicitly) and
// returns the value in the base unit. `what` is e.g. "a duration such as 1.5ms or 200us".
Result<double> ParseScaled(std::string_view text, std::string_view what, const UnitScale* units,
                           size_t num_units, bool case_insensitive) {
  auto fail = [&](std::string_view why) {
    std::string m = fmt::format("expected {}, got {}", what, Quote(text));
    if (!why.empty()) m += fmt::format(" ({})", why);
    return InvalidArgument(std::move(m));
  };
  const std::optional<Quantity> q = SplitQuantity(text);
  if (!q) return fail("");
  std::string lowered(q->unit);
  if (case_insensitive) {
    for (char& c : lowered) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  const UnitScale* match = nullptr;
  for (size_t i = 0; i < num_units; ++i) {
    if (lowered == units[i].unit) {
      match = &units[i];
      break;
    }
  }
  if (match == nullptr) return fail(fmt::format("unknown unit {}", Quote(q->unit)));
  const double value = q->value * match->scale;
  if (q->negative && value != 0) return fail("negative");
  if (std::isnan(value)) return fail("not a number");
  if (std::isinf(value)) return fail("too large");
  return q->negative ? 0.0 : value;
}

Result<int64_t> ToInt64(Result<double> value, std::string_view text, std::string_view what) {
  if (!value.ok()) return value.status();
  // Doubles this large are already integers, so rounding a value below 2^63 cannot overflow.
  if (!(*value < kInt64Limit)) {
    return InvalidArgument(fmt::format("expected {}, got {} (too large)", what, Quote(text)));
  }
  return static_cast<int64_t>(std::llround(*value));
}

constexpr std::array<UnitScale, 7> kDurationUnits = {{
    {"", 1e9},
    {"s", 1e9},
    {"ms", 1e6},
    {"us", 1e3},
    {"\xC2\xB5s", 1e3},  // U+00B5 MICRO SIGN
    {"\xCE\xBCs", 1e3},  // U+03BC GREEK SMALL LETTER MU
    {"ns", 1},
}};

// Sizes: the SI prefixes are decimal, the IEC ones binary, as their standards say.
constexpr std::array<UnitScale, 13> kByteUnits = {{
    {"", 1},
    {"B", 1},
    {"kB", 1e3},
    {"KB", 1e3},
    {"MB", 1e6},
    {"GB", 1e9},
    {"TB", 1e12},
    {"PB", 1e15},
    {"KiB", 1024.0},
    {"MiB", 1024.0 * 1024},
    {"GiB", 1024.0 * 1024 * 1024},
    {"TiB", 1024.0 * 1024 * 1024 * 1024},
    {"PiB", 1024.0 * 1024 * 1024 * 1024 * 1024},
}};

constexpr std::array<UnitScale, 25> kBandwidthUnits = {{
    {"", 1},
    {"B/s", 1},
    {"kB/s", 1e3},
    {"KB/s", 1e3},
    {"MB/s", 1e6},
    {"GB/s", 1e9},
    {"TB/s", 1e12},
    {"PB/s", 1e15},
    {"KiB/s", 1024.0},
    {"MiB/s", 1024.0 * 1024},
    {"GiB/s", 1024.0 * 1024 * 1024},
    {"TiB/s", 1024.0 * 1024 * 1024 * 1024},
    // Network rates are quoted in bits per second, with decimal prefixes; 8 bits a byte.
    {"bit/s", 1.0 / 8},
    {"kbit/s", 1e3 / 8},
    {"Kbit/s", 1e3 / 8},
    {"Mbit/s", 1e6 / 8},
    {"Gbit/s", 1e9 / 8},
    {"Tbit/s", 1e12 / 8},
    {"bps", 1.0 / 8},
    {"kbps", 1e3 / 8},
    {"Kbps", 1e3 / 8},
    {"Mbps", 1e6 / 8},
    {"Gbps", 1e9 / 8},
    {"Tbps", 1e12 / 8},
    {"Pbit/s", 1e15 / 8},
}};

// Matched case-insensitively (so the 'm' prefix is mega, never milli).
constexpr std::array<UnitScale, 15> kFlopsUnits = {{
    {"", 1},
    {"flops", 1},
    {"flop/s", 1},
    {"kflops", 1e3},
    {"kflop/s", 1e3},
    {"mflops", 1e6},
    {"mflop/s", 1e6},
    {"gflops", 1e9},
    {"gflop/s", 1e9},
    {"tflops", 1e12},
    {"tflop/s", 1e12},
    {"pflops", 1e15},
    {"pflop/s", 1e15},
    {"eflops", 1e18},
    {"eflop/s", 1e18},
}};

constexpr std::string_view kDurationWhat = "a duration such as 1.5ms or 200us";
constexpr std::string_view kBytesWhat = "a size such as 64MiB or 1.5GB";
constexpr std::string_view kBandwidthWhat = "a bandwidth such as 25GB/s or 100Gbit/s";
constexpr std::string_view kFlopsWhat = "a compute throughput such as 312TFLOPS";

// Up to 4 significant digits without an exponent, trailing zeros dropped: 1.5, 200, 1234.
std::string FormatNumber(double x) {
  if (x >= 1000) return fmt::format("{:.0f}", x);
  return fmt::format("{:.4g}", x);
}

struct Step {
  double scale;
  std::string_view unit;
};

// Formats `x` (>= 0, in the base unit) with the largest unit whose scale is <= x. `steps` are in
// decreasing order of scale; the last one is used for anything smaller.
template <size_t N>
std::string FormatWith(double x, const std::array<Step, N>& steps) {
  for (const Step& step : steps) {
    if (x >= step.scale || &step == &steps.back()) {
      return FormatNumber(x / step.scale) + std::string(step.unit);
    }
  }
  return FormatNumber(x);
}

// The same for any sign (appending, not `"-" + str`, which trips GCC 12's -Wrestrict).
template <size_t N>
std::string FormatSigned(double x, const std::array<Step, N>& steps) {
  std::string out;
  if (x < 0) {
    out.push_back('-');
    x = -x;
  }
  out.append(FormatWith(x, steps));
  return out;
}

}  // namespace

Result<int64_t> ParseDuration(std::string_view text) {
  return ToInt64(ParseScaled(text, kDurationWhat, kDurationUnits.data(), kDurationUnits.size(),
                             /*case_insensitive=*/false),
                 text, kDurationWhat);
}

Result<int64_t> ParseBytes(std::string_view text) {
  return ToInt64(ParseScaled(text, kBytesWhat, kByteUnits.data(), kByteUnits.size(),
                             /*case_insensitive=*/false),
                 text, kBytesWhat);
}

Result<double> ParseBandwidth(std::string_view text) {
  return ParseScaled(text, kBandwidthWhat, kBandwidthUnits.data(), kBandwidthUnits.size(),
                     /*case_insensitive=*/false);
}

Result<double> ParseFlops(std::string_view text) {
  return ParseScaled(text, kFlopsWhat, kFlopsUnits.data(), kFlopsUnits.size(),
                     /*case_insensitive=*/true);
}

std::string FormatDuration(int64_t ns) {
  static constexpr std::array<Step, 4> kSteps = {{{1e9, "s"}, {1e6, "ms"}, {1e3, "us"}, {1, "ns"}}};
  if (ns == 0) return "0s";
  return FormatSigned(static_cast<double>(ns), kSteps);
}

std::string FormatBytes(int64_t bytes) {
  static constexpr std::array<Step, 5> kSteps = {{{1099511627776.0, "TiB"},
                                                  {1073741824.0, "GiB"},
                                                  {1048576.0, "MiB"},
                                                  {1024.0, "KiB"},
                                                  {1, "B"}}};
  return FormatSigned(static_cast<double>(bytes), kSteps);
}

std::string FormatBandwidth(double bytes_per_second) {
  static constexpr std::array<Step, 5> kSteps = {
      {{1e12, "TB/s"}, {1e9, "GB/s"}, {1e6, "MB/s"}, {1e3, "kB/s"}, {1, "B/s"}}};
  if (!std::isfinite(bytes_per_second)) return fmt::format("{}B/s", bytes_per_second);
  return FormatSigned(bytes_per_second, kSteps);
}

std::string FormatFlops(double flops) {
  static constexpr std::array<Step, 6> kSteps = {{{1e18, "EFLOPS"},
                                                  {1e15, "PFLOPS"},
                                                  {1e12, "TFLOPS"},
                                                  {1e9, "GFLOPS"},
                                                  {1e6, "MFLOPS"},
                                                  {1, "FLOPS"}}};
  if (!std::isfinite(flops)) return fmt::format("{}FLOPS", flops);
  return FormatSigned(flops, kSteps);
}

}  // namespace pipecast::ir

// Tests for common/units.h: exact conversions and the wording of errors.
#include "common/units.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace pipecast::ir {
namespace {

int64_t Ns(std::string_view text) {
  Result<int64_t> r = ParseDuration(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : -1;
}
int64_t Bytes(std::string_view text) {
  Result<int64_t> r = ParseBytes(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : -1;
}
double Bandwidth(std::string_view text) {
  Result<double> r = ParseBandwidth(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : -1;
}
double Flops(std::string_view text) {
  Result<double> r = ParseFlops(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : -1;
}

TEST(ParseDuration, ExactNanoseconds) {
  EXPECT_EQ(Ns("1.5ms"), 1'500'000);
  EXPECT_EQ(Ns("200us"), 200'000);
  EXPECT_EQ(Ns("3ns"), 3);
  EXPECT_EQ(Ns("2s"), 2'000'000'000);
  EXPECT_EQ(Ns("0.1s"), 100'000'000);  // 0.1 * 1e9 is 100000000.00000001 in double: rounded
  EXPECT_EQ(Ns("1.1ms"), 1'100'000);
  EXPECT_EQ(Ns("0"), 0);
  EXPECT_EQ(Ns("0.25"), 250'000'000);  // plain number = seconds
  EXPECT_EQ(Ns("1e-3"), 1'000'000);
  EXPECT_EQ(Ns("2.5e3us"), 2'500'000);
  EXPECT_EQ(Ns(" 7 ms "), 7'000'000);
  EXPECT_EQ(Ns("5\xC2\xB5s"), 5'000);  // micro sign
  EXPECT_EQ(Ns("5\xCE\xBCs"), 5'000);  // Greek mu
  EXPECT_EQ(Ns("1.4ns"), 1);           // nearest
  EXPECT_EQ(Ns("1.6ns"), 2);
  EXPECT_EQ(Ns("9223372036s"), 9'223'372'036'000'000'000);
}

TEST(ParseDuration, Errors) {
  Result<int64_t> r = ParseDuration("3 parsecs");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "expected a duration such as 1.5ms or 200us, got '3 parsecs' (unknown unit 'parsecs')");
  EXPECT_NE(ParseDuration("-1ms").status().message().find("(negative)"), std::string::npos);
  EXPECT_NE(ParseDuration("1e300s").status().message().find("(too large)"), std::string::npos);
  EXPECT_NE(ParseDuration("1e400s").status().message().find("(too large)"), std::string::npos);
  EXPECT_NE(ParseDuration("9223372037s").status().message().find("(too large)"), std::string::npos);
  for (const char* bad :
       {"", "ms", "nan", "inf", "NaN ms", "1..2ms", "1 ms ms", "0x10", "1MS", "--1s", ".", "e3s"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseDuration("-0s").value(), 0);  // negative zero is zero
}

TEST(ParseBytes, DecimalAndBinaryPrefixes) {
  EXPECT_EQ(Bytes("64MiB"), 64 * 1024 * 1024);
  EXPECT_EQ(Bytes("1.5GB"), 1'500'000'000);
  EXPECT_EQ(Bytes("80GiB"), 80LL * 1024 * 1024 * 1024);
  EXPECT_EQ(Bytes("1.5KiB"), 1536);
  EXPECT_EQ(Bytes("2kB"), 2000);
  EXPECT_EQ(Bytes("2KB"), 2000);
  EXPECT_EQ(Bytes("12B"), 12);
  EXPECT_EQ(Bytes("12"), 12);
  EXPECT_EQ(Bytes("1TiB"), 1LL << 40);
  EXPECT_EQ(Bytes("8PiB"), 8LL << 50);
  EXPECT_EQ(Bytes("2.5"), 3);  // nearest, halves away from zero
}

TEST(ParseBytes, Errors) {
  EXPECT_EQ(ParseBytes("12 apples").status().message(),
            "expected a size such as 64MiB or 1.5GB, got '12 apples' (unknown unit 'apples')");
  EXPECT_NE(ParseBytes("-1GB").status().message().find("negative"), std::string::npos);
  EXPECT_NE(ParseBytes("8EiB").status().message().find("unknown unit"), std::string::npos);
  EXPECT_NE(ParseBytes("9000PiB").status().message().find("too large"), std::string::npos);
  EXPECT_FALSE(ParseBytes("1mb").ok());  // millibytes are not a thing; case matters for sizes
}

TEST(ParseBandwidth, BytesAndBits) {
  EXPECT_DOUBLE_EQ(Bandwidth("100GB/s"), 100e9);
  EXPECT_DOUBLE_EQ(Bandwidth("25Gbit/s"), 25e9 / 8);
  EXPECT_DOUBLE_EQ(Bandwidth("200Gbps"), 25e9);
  EXPECT_DOUBLE_EQ(Bandwidth("2TB/s"), 2e12);
  EXPECT_DOUBLE_EQ(Bandwidth("1GiB/s"), 1073741824.0);
  EXPECT_DOUBLE_EQ(Bandwidth("12.5"), 12.5);
  EXPECT_DOUBLE_EQ(Bandwidth("0"), 0);
  EXPECT_EQ(ParseBandwidth("25GB").status().message(),
            "expected a bandwidth such as 25GB/s or 100Gbit/s, got '25GB' (unknown unit 'GB')");
  EXPECT_FALSE(ParseBandwidth("-5GB/s").ok());
  EXPECT_FALSE(ParseBandwidth("1e400GB/s").ok());
}

TEST(ParseFlops, Prefixes) {
  EXPECT_DOUBLE_EQ(Flops("312TFLOPS"), 312e12);
  EXPECT_DOUBLE_EQ(Flops("312 Tflop/s"), 312e12);
  EXPECT_DOUBLE_EQ(Flops("1.979PFLOPS"), 1.979e15);
  EXPECT_DOUBLE_EQ(Flops("19.5 TFLOP/s"), 19.5e12);
  EXPECT_DOUBLE_EQ(Flops("1e12"), 1e12);
  EXPECT_DOUBLE_EQ(Flops("1EFLOPS"), 1e18);  // 'E' after digits is a prefix, not an exponent
  EXPECT_DOUBLE_EQ(Flops("2mflops"), 2e6);   // case-insensitive: m is mega
  EXPECT_EQ(ParseFlops("fast").status().message(),
            "expected a compute throughput such as 312TFLOPS, got 'fast'");
  EXPECT_FALSE(ParseFlops("-1TFLOPS").ok());
}

TEST(Format, ShortForms) {
  EXPECT_EQ(FormatDuration(1'500'000), "1.5ms");
  EXPECT_EQ(FormatDuration(200'000), "200us");
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(3), "3ns");
  EXPECT_EQ(FormatDuration(2'000'000'000), "2s");
  EXPECT_EQ(FormatDuration(12'345'000'000'000), "12345s");
  EXPECT_EQ(FormatBytes(64 * 1024 * 1024), "64MiB");
  EXPECT_EQ(FormatBytes(1536), "1.5KiB");
  EXPECT_EQ(FormatBytes(100), "100B");
  EXPECT_EQ(FormatBandwidth(25e9), "25GB/s");
  EXPECT_EQ(FormatFlops(312e12), "312TFLOPS");
  // Formatting then parsing gives the value back (to the 4 digits shown).
  EXPECT_EQ(Ns(FormatDuration(1'500'000)), 1'500'000);
  EXPECT_EQ(Bytes(FormatBytes(3LL << 30)), 3LL << 30);
}

}  // namespace
}  // namespace pipecast::ir

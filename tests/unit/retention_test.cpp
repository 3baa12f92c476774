#include "server/retention.h"

#include <gtest/gtest.h>

namespace statherd::server {
namespace {

using Tiers = std::vector<RetentionTier>;

TEST(Retention, ParsesGraphiteTiersAndTheSingleDuration) {
  EXPECT_EQ(*resolve_retention("10s:6h,1m:7d", 10), (Tiers{{10, 21600}, {60, 604800}}));
  EXPECT_EQ(*resolve_retention("1h", 10), (Tiers{{10, 3600}}));  // interval:1h
  EXPECT_EQ(*resolve_retention("2h", 1), (Tiers{{1, 7200}}));
  EXPECT_EQ(*resolve_retention("1s:1h,10s:6h,5m:7d", 1),
            (Tiers{{1, 3600}, {10, 21600}, {300, 604800}}));
  EXPECT_EQ(*parse_retention("1h"), (Tiers{{0, 3600}}));
}

TEST(Retention, DefaultsFollowTheInterval) {
  EXPECT_EQ(retention_text(*resolve_retention("", 10)), "10s:6h,5m:7d");
  EXPECT_EQ(retention_text(*resolve_retention("", 1)), "1s:1h,10s:6h,5m:7d");
  EXPECT_EQ(retention_text(*resolve_retention("", 5)), "5s:1h,10s:6h,5m:7d");
  EXPECT_EQ(retention_text(*resolve_retention("", 15)), "15s:6h,5m:7d");
  EXPECT_EQ(retention_text(*resolve_retention("", 7)), "7s:6h,301s:7d");
  EXPECT_EQ(retention_text(*resolve_retention("", 60)), "1m:6h,5m:7d");
  EXPECT_EQ(retention_text(*resolve_retention("", 3600)), "1h:7d");
  // Every default passes its own checks.
  for (int64_t i : {1, 2, 3, 5, 7, 10, 15, 30, 60, 120, 299, 300, 301, 900, 3600})
    EXPECT_TRUE(resolve_retention(retention_text(default_retention(i)), i).ok()) << i;
}

void expect_error(std::string_view text, int64_t interval, std::string_view fragment) {
  auto r = resolve_retention(text, interval);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(std::string(text)), std::string::npos) << r.error().message;
  EXPECT_FALSE(r.error().hint.empty());
}

TEST(Retention, RefusesWhatItCannotKeepWithAHint) {
  expect_error("1y", 10, "'1y' is not a duration");
  expect_error("10s:6h,abc", 10, "has no PRECISION");
  expect_error("10s:", 10, "is not a duration");
  expect_error("1500ms:1h", 1, "whole seconds");
  expect_error("15s:6h", 10, "not a multiple of the interval 10s");
  expect_error("10s:6h,15s:7d", 5, "not a multiple of the previous tier's (10s)");
  expect_error("1m:6h,10s:7d", 10, "not a multiple of the previous tier's (1m)");
  expect_error("10s:6h,1m:1h", 10, "not longer than the previous tier's (6h)");
  expect_error("10s:1m,5m:7d", 10, "keeps less than one of its points (1m)");
  expect_error("5s", 10, "retention is shorter than its precision");
  expect_error("1000000d", 10, "over the limit of 100000 points per path");
  expect_error("1s:1m,2s:2m,4s:4m,8s:8m,16s:16m,32s:32m,64s:64m,128s:128m,256s:256m", 1,
               "more than 8 tiers");
  auto r = resolve_retention("15s:6h", 10);
  EXPECT_NE(r.error().hint.find("at interval 10s"), std::string::npos) << r.error().hint;
}

}  // namespace
}  // namespace statherd::server

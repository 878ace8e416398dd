// Twenty's webhook signatures (issue 9): HMAC-SHA256 over timestamp ":" raw body compared in
// constant time, a timestamp window, replayed nonces refused from a bounded cache. The deliveries
// are signed by the fake Twenty's sender, an implementation independent of the verifier's.
#include "producers/twenty/webhook_verifier.h"

#include <gtest/gtest.h>

#include "tests/fakes/twenty/webhook_sender.h"

namespace leadsync::producers::twenty {
namespace {

using fakes::twenty::webhook_signature;
using namespace std::chrono_literals;

constexpr int64_t kNow = 1'800'000'000'000;
const std::string kBody = R"({"eventName":"person.updated","record":{"id":"p1"}})";

WebhookVerdict check(WebhookVerifier& v, const std::string& ts, const std::string& nonce, const std::string& body,
                     const std::string& signed_body, int64_t now = kNow) {
  return v.verify(ts, nonce, webhook_signature("s3cret", ts, signed_body), body, now);
}

TEST(TwentyWebhookVerifier, R12_AcceptsASignedDeliveryAndRefusesItsReplay) {
  WebhookVerifier v("s3cret", 5min, 1000);
  const auto ts = std::to_string(kNow - 1000);
  EXPECT_EQ(check(v, ts, "n1", kBody, kBody), WebhookVerdict::kAccepted);
  EXPECT_EQ(check(v, ts, "n1", kBody, kBody), WebhookVerdict::kReplayedNonce);
  EXPECT_EQ(check(v, ts, "n2", kBody, kBody), WebhookVerdict::kAccepted);
}

TEST(TwentyWebhookVerifier, R12_RefusesASignatureOfOtherBytesOrAnotherSecret) {
  WebhookVerifier v("s3cret", 5min, 1000);
  const auto ts = std::to_string(kNow);
  // The same JSON with one more space is other bytes: verification is on the raw body.
  EXPECT_EQ(check(v, ts, "n1", kBody, R"({"eventName": "person.updated","record":{"id":"p1"}})"),
            WebhookVerdict::kBadSignature);
  EXPECT_EQ(v.verify(ts, "n2", webhook_signature("other", ts, kBody), kBody, kNow), WebhookVerdict::kBadSignature);
  // The signature of another timestamp, a truncated one, one that is not hex.
  EXPECT_EQ(v.verify(ts, "n3", webhook_signature("s3cret", "1", kBody), kBody, kNow), WebhookVerdict::kBadSignature);
  const auto good = webhook_signature("s3cret", ts, kBody);
  EXPECT_EQ(v.verify(ts, "n4", good.substr(0, 62), kBody, kNow), WebhookVerdict::kBadSignature);
  EXPECT_EQ(v.verify(ts, "n5", std::string(64, 'z'), kBody, kNow), WebhookVerdict::kBadSignature);
  // Upper-case hex is the same signature.
  std::string upper = good;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(v.verify(ts, "n6", upper, kBody, kNow), WebhookVerdict::kAccepted);
  // A rejected delivery's nonce was not remembered: only n6 was.
  EXPECT_EQ(v.remembered_nonces(), 1u);
}

TEST(TwentyWebhookVerifier, R12_RefusesTimestampsOutsideTheWindowBothWays) {
  WebhookVerifier v("s3cret", 5min, 1000);
  EXPECT_EQ(check(v, std::to_string(kNow - 301'000), "a", kBody, kBody), WebhookVerdict::kStaleTimestamp);
  EXPECT_EQ(check(v, std::to_string(kNow + 301'000), "b", kBody, kBody), WebhookVerdict::kStaleTimestamp);
  EXPECT_EQ(check(v, "12abc", "c", kBody, kBody), WebhookVerdict::kStaleTimestamp);
  EXPECT_EQ(check(v, std::to_string(kNow - 299'000), "d", kBody, kBody), WebhookVerdict::kAccepted);
}

TEST(TwentyWebhookVerifier, R12_MissingHeadersAreRefused) {
  WebhookVerifier v("s3cret", 5min, 1000);
  const auto ts = std::to_string(kNow);
  EXPECT_EQ(v.verify("", "n", "x", kBody, kNow), WebhookVerdict::kMissingHeaders);
  EXPECT_EQ(v.verify(ts, "", webhook_signature("s3cret", ts, kBody), kBody, kNow), WebhookVerdict::kMissingHeaders);
  EXPECT_EQ(v.verify(ts, "n", "", kBody, kNow), WebhookVerdict::kMissingHeaders);
}

TEST(TwentyWebhookVerifier, TheNonceCacheIsBoundedAndForgetsNoncesOnlyOnceTheirWindowHasPassed) {
  WebhookVerifier v("s3cret", 5min, 100);
  for (int i = 0; i < 250; ++i) {
    ASSERT_EQ(check(v, std::to_string(kNow), "n" + std::to_string(i), kBody, kBody), WebhookVerdict::kAccepted);
  }
  EXPECT_LE(v.remembered_nonces(), 100u);
  EXPECT_EQ(check(v, std::to_string(kNow), "n249", kBody, kBody), WebhookVerdict::kReplayedNonce);
  // Ten minutes later the old nonces have expired; a delivery that reuses one is stale anyway.
  const int64_t later = kNow + 600'000;
  EXPECT_EQ(check(v, std::to_string(kNow), "n249", kBody, kBody, later), WebhookVerdict::kStaleTimestamp);
  EXPECT_EQ(check(v, std::to_string(later), "fresh", kBody, kBody, later), WebhookVerdict::kAccepted);
  EXPECT_EQ(v.remembered_nonces(), 1u);
}

}  // namespace
}  // namespace leadsync::producers::twenty

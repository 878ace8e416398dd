// R6, R13 — partial events change only their fields, and each field is guarded by its own version:
// a newer partial followed by an older full image delayed in a retry tier keeps the partial's field
// and takes the older image's other fields (design.md §4).
#include <gtest/gtest.h>

#include "common/mapping.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"
#include "workers/targets/entity_applier.h"
#include "workers/validate.h"

namespace leadsync::testing {
namespace {

class PartialEvents : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("partial"));
    config_.entities.at("lead").partial_events = true;
    conn_ = connect(config_);
    common::migrate(*conn_, config_);
    applier_ = std::make_unique<workers::EntityApplier>(config_, config_.entity("lead"));
  }
  void TearDown() override {
    pqxx::work tx(*conn_);
    tx.exec("DROP SCHEMA IF EXISTS " + conn_->quote_name(config_.postgres.schema) + " CASCADE");
    tx.commit();
  }

  common::ChangeEvent full(int64_t version, const std::string& status, const std::string& phone) {
    common::ChangeEvent e = base(version);
    for (const auto& f : config_.entity("lead").fields) (*e.mutable_fields())[f.name].set_null_value(true);
    (*e.mutable_fields())["email"].set_string_value("ann@example.com");
    (*e.mutable_fields())["status"].set_string_value(status);
    (*e.mutable_fields())["phone"].set_string_value(phone);
    return e;
  }
  common::ChangeEvent partial(int64_t version, const std::string& field, const std::string& value) {
    common::ChangeEvent e = base(version);
    e.set_partial(true);
    (*e.mutable_fields())[field].set_string_value(value);
    return e;
  }
  common::ChangeEvent base(int64_t version) {
    common::ChangeEvent e;
    e.set_source("crm");
    e.set_entity("lead");
    e.set_key("L-1");
    e.set_op(leadsync::v1::OP_UPSERT);
    e.set_source_version(version);
    e.set_event_id("e" + std::to_string(version));
    return e;
  }
  workers::ApplyCounts apply(const common::ChangeEvent& e) {
    EXPECT_EQ(workers::validate_event(config_, e), "");
    pqxx::work tx(*conn_);
    auto counts = applier_->apply(tx, {&e});
    tx.commit();
    return counts[""];
  }
  pqxx::row row() {
    pqxx::work tx(*conn_);
    return tx.exec1("SELECT status, phone, email, _version, _deleted FROM " +
                    common::qualified(*conn_, config_.postgres.schema, "leads"));
  }

  common::Config config_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<workers::EntityApplier> applier_;
};

TEST_F(PartialEvents, R13_ANewerPartialSurvivesAnOlderFullImageThatArrivesLate) {
  EXPECT_EQ(apply(full(100, "new", "111")).inserted, 1);
  EXPECT_EQ(apply(partial(300, "status", "won")).updated, 1);
  // The full image of version 200 was delayed in a retry tier: its phone is newer than what the
  // table has (100), its status is older than the partial's (300).
  EXPECT_EQ(apply(full(200, "contacted", "222")).updated, 1);
  const auto r = row();
  EXPECT_EQ(r[0].as<std::string>(), "won");
  EXPECT_EQ(r[1].as<std::string>(), "222");
  EXPECT_EQ(r[2].as<std::string>(), "ann@example.com");
  EXPECT_EQ(r[3].as<int64_t>(), 300);
  // Replays change nothing.
  EXPECT_EQ(apply(full(200, "contacted", "222")).stale, 1);
  EXPECT_EQ(apply(partial(300, "status", "won")).stale, 1);
}

TEST_F(PartialEvents, R6_APartialEventChangesOnlyTheFieldsItNames) {
  apply(full(100, "new", "111"));
  apply(partial(150, "phone", "999"));
  const auto r = row();
  EXPECT_EQ(r[0].as<std::string>(), "new");
  EXPECT_EQ(r[1].as<std::string>(), "999");
  EXPECT_EQ(r[2].as<std::string>(), "ann@example.com");
}

TEST_F(PartialEvents, R13_AnOlderPartialCannotReviveANewerTombstone) {
  apply(full(100, "new", "111"));
  auto del = base(200);
  del.set_op(leadsync::v1::OP_DELETE);
  apply(del);
  EXPECT_EQ(apply(partial(150, "status", "won")).stale, 1);
  const auto r = row();
  EXPECT_TRUE(r[4].as<bool>());
  EXPECT_EQ(r[0].as<std::string>(), "new");
  EXPECT_EQ(r[3].as<int64_t>(), 200);
}

TEST_F(PartialEvents, PartialEventsAreRejectedByEntitiesWithoutPerFieldVersions) {
  auto config = config_;
  config.entities.at("lead").partial_events = false;
  EXPECT_NE(workers::validate_event(config, partial(1, "status", "x")).find("partial_events"), std::string::npos);
}

}  // namespace
}  // namespace leadsync::testing

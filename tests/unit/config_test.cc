// Config validation: every error names the key path and what was expected.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include "common/config.h"
#include "common/errors.h"

namespace leadsync::common {
namespace {

const char* kValid = R"(
kafka:
  brokers: 127.0.0.1:9092
  partitions: 6
  retry: {attempts: 2, base_ms: 100, max_ms: 400}
postgres:
  url: postgresql://localhost/leadsync
entities:
  lead:
    table: leads
    key: lead_id
    match_on: [email]
    audit: true
    fields:
      email:        {type: text, required: true, normalize: lower_trim}
      lead_sources: {type: text_list, coerce: wrap_scalar}
      score:        {type: int}
sources:
  - name: sales-sheet
    kind: csv
    entity: lead
    url: leads.csv
    key_column: "Lead ID"
    columns: {"Lead ID": lead_id, "Email": email, "Lead sources": lead_sources, "Score": score}
    schedule: 30s
)";

std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(Config, ParsesAValidConfigWithDefaults) {
  const auto c = parse_config(kValid);
  EXPECT_EQ(c.kafka.partitions, 6);
  EXPECT_EQ(c.kafka.topic, "leadsync.changes");
  EXPECT_EQ(c.kafka.retry.attempts, 2);
  EXPECT_EQ(c.kafka.retry_topic(2), "leadsync.changes.retry.2");
  const auto& lead = c.entity("lead");
  ASSERT_EQ(lead.fields.size(), 3u);
  EXPECT_EQ(lead.fields[0].name, "email");
  EXPECT_EQ(lead.fields[0].normalize, Normalize::kLowerTrim);
  EXPECT_TRUE(lead.fields[0].required);
  EXPECT_EQ(lead.fields[1].type, FieldType::kTextList);
  ASSERT_EQ(c.sources.size(), 1u);
  EXPECT_EQ(c.sources[0].schedule, std::chrono::seconds(30));
  EXPECT_EQ(c.sources[0].columns.size(), 4u);
}

// worker.instance_id becomes two group.instance.id values: only characters no broker or log needs
// to quote.
TEST(Config, R13_AWorkerInstanceIdIsKeptAndOneWithOtherCharactersIsRefusedNamingTheKey) {
  const auto with = [](const std::string& id) { return replace(kValid, "\nsources:", "\nworker: {instance_id: " + id + "}\nsources:"); };
  EXPECT_EQ(parse_config(with("leadsync-worker-0")).worker.instance_id, "leadsync-worker-0");
  EXPECT_EQ(parse_config(kValid).worker.instance_id, "");
  const auto e = error_of(with("\"a b\""));
  EXPECT_NE(e.find("worker.instance_id"), std::string::npos) << e;
  EXPECT_NE(e.find("not a valid instance id"), std::string::npos) << e;
}

TEST(Config, RejectsUnknownKeysNamingTheirPath) {
  const auto e = error_of(replace(kValid, "audit: true", "audit: true\n    auditt: false"));
  EXPECT_NE(e.find("entities.lead.auditt"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}

TEST(Config, RejectsAnUnknownFieldTypeListingTheChoices) {
  const auto e = error_of(replace(kValid, "{type: int}", "{type: integer}"));
  EXPECT_NE(e.find("entities.lead.fields.score.type"), std::string::npos) << e;
  EXPECT_NE(e.find("'integer'"), std::string::npos) << e;
  EXPECT_NE(e.find("text_list"), std::string::npos) << e;
}

TEST(Config, RejectsAColumnMappedToAnUndefinedField) {
  const auto e = error_of(replace(kValid, "\"Score\": score", "\"Score\": scoring"));
  EXPECT_NE(e.find("sources[0].columns.Score"), std::string::npos) << e;
  EXPECT_NE(e.find("'scoring'"), std::string::npos) << e;
}

TEST(Config, RejectsASourceForAnUndefinedEntity) {
  const auto e = error_of(replace(kValid, "entity: lead", "entity: buyer"));
  EXPECT_NE(e.find("sources[0].entity"), std::string::npos) << e;
  EXPECT_NE(e.find("'buyer'"), std::string::npos) << e;
}

TEST(Config, RejectsAFieldThatNoColumnMaps) {
  // A field left unmapped would be silently nulled on every full event (R6).
  const auto e = error_of(replace(kValid, ", \"Score\": score", ""));
  EXPECT_NE(e.find("field 'score'"), std::string::npos) << e;
  EXPECT_NE(e.find("not mapped"), std::string::npos) << e;
}

TEST(Config, RejectsWrongValueTypesAndRanges) {
  EXPECT_NE(error_of(replace(kValid, "partitions: 6", "partitions: six")).find("kafka.partitions"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "partitions: 6", "partitions: 0")).find("out of range"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "max_ms: 400", "max_ms: 50")).find("kafka.retry.max_ms"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "audit: true", "audit: maybe")).find("entities.lead.audit"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "schedule: 30s", "schedule: soon")).find("sources[0].schedule"),
            std::string::npos);
}

TEST(Config, RejectsUnsafeIdentifiers) {
  const auto e = error_of(replace(kValid, "table: leads", "table: \"leads; drop table x\""));
  EXPECT_NE(e.find("entities.lead.table"), std::string::npos) << e;
  EXPECT_NE(e.find("not a valid name"), std::string::npos) << e;
}

TEST(Config, RejectsMissingRequiredKeys) {
  EXPECT_NE(error_of(replace(kValid, "    key: lead_id\n", "")).find("entities.lead.key: is required"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "    key_column: \"Lead ID\"\n", "")).find("sources[0].key_column"),
            std::string::npos);
}

TEST(Config, ReportsInvalidYamlWithItsLine) {
  const auto e = error_of("kafka:\n  brokers: [unclosed\n");
  EXPECT_NE(e.find("invalid YAML at line"), std::string::npos) << e;
}

TEST(Config, ParsesDurations) {
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("2m"), std::chrono::milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), std::chrono::milliseconds(3'600'000));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("5 days"));
}

// Issue 7 item 19: a value librdkafka rejects is a configuration error that names its key, found
// when the configuration is loaded (not an abort when the client is created).
TEST(Config, R19_KafkaPropertyLibrdkafkaRejectsNamesTheKey) {
  const auto e = error_of(replace(kValid, "  partitions: 6\n", "  partitions: 6\n  properties: {acks: sometimes}\n"));
  EXPECT_NE(e.find("kafka.properties.acks"), std::string::npos) << e;
  EXPECT_NE(e.find("sometimes"), std::string::npos) << e;
  const auto unknown = error_of(replace(kValid, "  partitions: 6\n", "  partitions: 6\n  properties: {no.such: 1}\n"));
  EXPECT_NE(unknown.find("kafka.properties.no.such"), std::string::npos) << unknown;
}

// Issue 7 item 19: user properties must not silently switch off the idempotent, acks=all producer
// that "nothing lost" rests on; kafka.allow_unsafe_producer says it was meant.
TEST(Config, R19_KafkaPropertiesCannotWeakenTheProducerUnlessAllowed) {
  for (const char* weak : {"{acks: 1}", "{acks: \"0\"}", "{enable.idempotence: \"false\"}"}) {
    const auto yaml = replace(kValid, "  partitions: 6\n", std::string("  partitions: 6\n  properties: ") + weak + "\n");
    const auto e = error_of(yaml);
    EXPECT_NE(e.find("kafka.properties."), std::string::npos) << weak << ": " << e;
    EXPECT_NE(e.find("allow_unsafe_producer"), std::string::npos) << weak << ": " << e;
    const auto allowed = parse_config(replace(yaml, "  partitions: 6\n", "  partitions: 6\n  allow_unsafe_producer: true\n"));
    EXPECT_TRUE(allowed.kafka.allow_unsafe_producer);
  }
  // Saying the safe thing explicitly is fine.
  EXPECT_NO_THROW(parse_config(replace(kValid, "  partitions: 6\n", "  partitions: 6\n  properties: {acks: all}\n")));
  EXPECT_NO_THROW(parse_config(replace(kValid, "  partitions: 6\n", "  partitions: 6\n  properties: {acks: \"-1\"}\n")));
}

// Offsets are stored by leadsync only after the database commit; a property that stores them
// earlier (or moves the client elsewhere) would lose events silently.
TEST(Config, R19_KafkaPropertiesThatLeadsyncManagesAreRefused) {
  for (const char* managed : {"enable.auto.offset.store", "group.id", "bootstrap.servers"}) {
    const auto e = error_of(replace(kValid, "  partitions: 6\n",
                                    std::string("  partitions: 6\n  properties: {") + managed + ": x}\n"));
    EXPECT_NE(e.find(std::string("kafka.properties.") + managed), std::string::npos) << e;
  }
}

class KafkaSecretsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* v : {"LEADSYNC_KAFKA_SASL_PASSWORD", "LEADSYNC_KAFKA_SASL_USERNAME", "LEADSYNC_KAFKA_SSL_KEY_PASSWORD",
                          "TEST_KAFKA_SECRET"}) {
      unsetenv(v);
    }
    std::filesystem::remove(path_);
  }
  Config load(const std::string& yaml) {
    std::ofstream(path_) << yaml;
    return load_config(path_);
  }
  std::string load_error(const std::string& yaml) {
    try {
      load(yaml);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::string path_ = (std::filesystem::temp_directory_path() / ("leadsync-secrets-" + std::to_string(getpid()) + ".yaml")).string();
};

// Issue 7 item 18: Kafka SASL/SSL secrets come from the environment, never from the YAML.
TEST_F(KafkaSecretsTest, R18_SaslAndSslSecretsComeFromTheEnvironment) {
  setenv("LEADSYNC_KAFKA_SASL_USERNAME", "svc-leadsync", 1);
  setenv("LEADSYNC_KAFKA_SASL_PASSWORD", "pw-from-env", 1);
  setenv("LEADSYNC_KAFKA_SSL_KEY_PASSWORD", "key-pw", 1);
  const auto c = load(replace(kValid, "  partitions: 6\n",
                              "  partitions: 6\n  properties: {security.protocol: SASL_SSL, sasl.mechanisms: PLAIN}\n"));
  EXPECT_EQ(c.kafka.properties.at("sasl.username"), "svc-leadsync");
  EXPECT_EQ(c.kafka.properties.at("sasl.password"), "pw-from-env");
  EXPECT_EQ(c.kafka.properties.at("ssl.key.password"), "key-pw");
}

TEST_F(KafkaSecretsTest, R18_SecretsEnvNamesTheVariableForAnyProperty) {
  setenv("TEST_KAFKA_SECRET", "s3", 1);
  const auto c = load(replace(kValid, "  partitions: 6\n",
                              "  partitions: 6\n  secrets_env: {sasl.password: TEST_KAFKA_SECRET}\n"));
  EXPECT_EQ(c.kafka.properties.at("sasl.password"), "s3");
  const auto e = load_error(replace(kValid, "  partitions: 6\n",
                                    "  partitions: 6\n  secrets_env: {sasl.password: TEST_KAFKA_UNSET}\n"));
  EXPECT_NE(e.find("kafka.secrets_env.sasl.password"), std::string::npos) << e;
  EXPECT_NE(e.find("TEST_KAFKA_UNSET"), std::string::npos) << e;
}

TEST_F(KafkaSecretsTest, R18_ASecretWrittenIntoTheYamlIsRefusedWithoutEchoingIt) {
  const auto e = error_of(replace(kValid, "  partitions: 6\n", "  partitions: 6\n  properties: {sasl.password: hunter2}\n"));
  EXPECT_NE(e.find("kafka.properties.sasl.password"), std::string::npos) << e;
  EXPECT_NE(e.find("LEADSYNC_KAFKA_SASL_PASSWORD"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
}

// Issue 7 item 19 end to end: the producer used to die with SIGABRT on such a property.
TEST(Executables, R19_ProducerExitsTwoNamingABadKafkaProperty) {
  const auto dir = std::filesystem::temp_directory_path() / ("leadsync-exit-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "leads.csv") << "Lead ID,Email,Lead sources,Score\n1,a@b.test,x,1\n";
  std::ofstream(dir / "c.yaml") << replace(kValid, "  partitions: 6\n", "  partitions: 6\n  properties: {acks: sometimes}\n");
  const auto cmd = std::string(LEADSYNC_BINARY_DIR) + "/producers/leadsync-producer --config " + (dir / "c.yaml").string() +
                   " --once >" + (dir / "out").string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream in(dir / "out");
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal; output: " << out;
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("kafka.properties.acks"), std::string::npos) << out;
}

}  // namespace
}  // namespace leadsync::common

#include "tests/integration/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <librdkafka/rdkafkacpp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

#include "common/kafka_admin.h"
#include "common/kafka_producer.h"
#include "common/schema.h"
#include "workers/worker.h"

namespace leadsync::testing {

std::string source_path(const std::string& relative) { return std::string(LEADSYNC_SOURCE_DIR) + "/" + relative; }

std::string unique_tag(const std::string& base) {
  std::string tag;
  for (const char c : base) tag += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "_%06x", rd() & 0xffffff);
  return tag.substr(0, 40) + suffix;
}

common::Config isolated_example_config(const std::string& tag, int partitions) {
  if (!std::getenv("LEADSYNC_KAFKA_BROKERS") || !std::getenv("LEADSYNC_PG_URL")) {
    throw std::runtime_error("integration tests need LEADSYNC_KAFKA_BROKERS and LEADSYNC_PG_URL (source .local/env)");
  }
  auto config = common::load_config(source_path("examples/leadsync.yaml"));
  config.kafka.topic = "t." + tag;
  config.kafka.dlq_topic = "t." + tag + ".dlq";
  config.kafka.group = "g." + tag;
  config.kafka.partitions = partitions;
  config.postgres.schema = "t_" + tag;
  for (auto& s : config.sources) s.name = s.name + "-" + tag;
  return config;
}

IsolatedEnvironment::IsolatedEnvironment(const common::Config& config) : config_(config) {
  auto conn = connect(config_);
  common::migrate(*conn, config_);
  common::create_topics(config_.kafka, common::leadsync_topics(config_.kafka));
}

IsolatedEnvironment::~IsolatedEnvironment() {
  try {
    auto conn = connect(config_);
    pqxx::work tx(*conn);
    tx.exec("DROP SCHEMA IF EXISTS " + conn->quote_name(config_.postgres.schema) + " CASCADE");
    tx.commit();
    std::vector<std::string> topics;
    for (const auto& t : common::leadsync_topics(config_.kafka)) topics.push_back(t.name);
    common::delete_topics(config_.kafka, topics);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cleanup failed: %s\n", e.what());
  }
}

WorkerThread::WorkerThread(const common::Config& config) : config_(config) {
  thread_ = std::thread([this] {
    try {
      workers::Worker worker(config_, telemetry_);
      worker.run(stop_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "worker thread failed: " << e.what();
    }
  });
}

WorkerThread::~WorkerThread() { stop(); }

void WorkerThread::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

common::Value text(const std::string& s) {
  common::Value v;
  v.set_string_value(s);
  return v;
}
common::Value null() {
  common::Value v;
  v.set_null_value(true);
  return v;
}
common::Value integer(int64_t i) {
  common::Value v;
  v.set_int_value(i);
  return v;
}
common::Value timestamp(int64_t micros) {
  common::Value v;
  v.set_timestamp_micros(micros);
  return v;
}
common::Value list(const std::vector<std::string>& items) {
  common::Value v;
  auto* l = v.mutable_string_list();
  for (const auto& s : items) l->add_values(s);
  return v;
}

std::unique_ptr<pqxx::connection> connect(const common::Config& config) {
  return common::pg_connect(config.postgres.url, "leadsync-tests");
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int64_t accounted_events(pqxx::connection& conn, const std::string& run_id) {
  pqxx::work tx(conn);
  return tx.exec_params1(
               "SELECT coalesce(sum(inserted + updated + deleted + unchanged + stale + failed), 0) "
               "FROM leadsync.run_apply_stats WHERE run_id = $1",
               run_id)[0]
      .as<int64_t>();
}

// ------------------------------------------------------------------ Kafka inspection

namespace {

std::unique_ptr<RdKafka::Conf> inspection_conf(const common::KafkaConfig& kafka) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  auto set = [&](const std::string& key, const std::string& value) {
    if (conf->set(key, value, err) != RdKafka::Conf::CONF_OK) {
      throw std::runtime_error("kafka property '" + key + "': " + err);
    }
  };
  set("bootstrap.servers", kafka.brokers);
  for (const auto& [k, v] : kafka.properties) set(k, v);
  return conf;
}

}  // namespace

std::vector<int64_t> high_watermarks(const common::KafkaConfig& kafka, const std::string& topic,
                                     std::chrono::milliseconds timeout) {
  auto conf = inspection_conf(kafka);
  std::string err;
  std::unique_ptr<RdKafka::Producer> handle(RdKafka::Producer::create(conf.get(), err));
  if (!handle) throw std::runtime_error("kafka client for watermarks: " + err);
  std::vector<int64_t> high(static_cast<std::size_t>(kafka.partitions));
  for (int32_t p = 0; p < kafka.partitions; ++p) {
    int64_t low = 0;
    const auto rc = handle->query_watermark_offsets(topic, p, &low, &high[static_cast<std::size_t>(p)],
                                                    static_cast<int>(timeout.count()));
    if (rc != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("watermarks of " + topic + "[" + std::to_string(p) + "]: " + RdKafka::err2str(rc));
    }
  }
  return high;
}

int64_t sum(const std::vector<int64_t>& offsets) {
  int64_t total = 0;
  for (const auto o : offsets) total += o;
  return total;
}

std::vector<TopicMessage> read_messages(const common::KafkaConfig& kafka, const std::string& topic,
                                        const std::vector<int64_t>& from, const std::vector<int64_t>& to,
                                        std::chrono::milliseconds timeout) {
  if (from.size() != to.size()) throw std::invalid_argument("read_messages: from and to differ in size");
  auto conf = inspection_conf(kafka);
  std::string err;
  // A group id is required by the KafkaConsumer API; with assign() and no commits it is never joined.
  if (conf->set("group.id", "leadsync-tests-reader", err) != RdKafka::Conf::CONF_OK ||
      conf->set("enable.auto.commit", "false", err) != RdKafka::Conf::CONF_OK ||
      conf->set("enable.partition.eof", "false", err) != RdKafka::Conf::CONF_OK) {
    throw std::runtime_error("kafka reader config: " + err);
  }
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer) throw std::runtime_error("kafka reader: " + err);

  std::vector<std::unique_ptr<RdKafka::TopicPartition>> owned;
  std::vector<RdKafka::TopicPartition*> assignment;
  std::vector<int64_t> next(from);
  std::size_t wanted = 0;
  for (std::size_t p = 0; p < from.size(); ++p) {
    if (to[p] <= from[p]) continue;
    wanted += static_cast<std::size_t>(to[p] - from[p]);
    owned.emplace_back(RdKafka::TopicPartition::create(topic, static_cast<int32_t>(p), from[p]));
    assignment.push_back(owned.back().get());
  }
  std::vector<TopicMessage> messages;
  if (wanted == 0) return messages;
  if (const auto rc = consumer->assign(assignment); rc != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("kafka reader assign: " + RdKafka::err2str(rc));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (messages.size() < wanted && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> msg(consumer->consume(100));
    if (!msg || msg->err() == RdKafka::ERR__TIMED_OUT) continue;
    if (msg->err() != RdKafka::ERR_NO_ERROR) throw std::runtime_error("kafka reader: " + msg->errstr());
    const auto p = static_cast<std::size_t>(msg->partition());
    if (p >= to.size() || msg->offset() < next[p] || msg->offset() >= to[p]) continue;
    next[p] = msg->offset() + 1;
    TopicMessage m;
    m.partition = msg->partition();
    m.offset = msg->offset();
    if (msg->key()) m.key = *msg->key();
    m.value.assign(static_cast<const char*>(msg->payload()), msg->len());
    messages.push_back(std::move(m));
  }
  consumer->close();
  for (std::size_t p = 0; p < from.size(); ++p) {
    if (to[p] > from[p] && next[p] < to[p]) {
      throw std::runtime_error("read " + topic + "[" + std::to_string(p) + "] up to offset " + std::to_string(next[p]) +
                               " of " + std::to_string(to[p]) + " within " + std::to_string(timeout.count()) + " ms");
    }
  }
  std::sort(messages.begin(), messages.end(), [](const TopicMessage& a, const TopicMessage& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return messages;
}

// ------------------------------------------------------------------ processes and files

namespace {

// A YAML double-quoted scalar: every string is quoted, so no value can change the document's shape.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* normalize_name(common::Normalize n) {
  switch (n) {
    case common::Normalize::kNone: return "none";
    case common::Normalize::kTrim: return "trim";
    case common::Normalize::kLower: return "lower";
    case common::Normalize::kLowerTrim: return "lower_trim";
  }
  return "none";
}

}  // namespace

std::string config_yaml(const common::Config& c) {
  std::ostringstream y;
  y << "kafka:\n"
    << "  brokers: " << quoted(c.kafka.brokers) << "\n"
    << "  topic: " << quoted(c.kafka.topic) << "\n"
    << "  partitions: " << c.kafka.partitions << "\n"
    << "  group: " << quoted(c.kafka.group) << "\n"
    << "  retry: {attempts: " << c.kafka.retry.attempts << ", base_ms: " << c.kafka.retry.base_ms
    << ", max_ms: " << c.kafka.retry.max_ms << "}\n"
    << "  dlq_topic: " << quoted(c.kafka.dlq_topic) << "\n";
  if (!c.kafka.properties.empty()) {
    y << "  properties:\n";
    for (const auto& [k, v] : c.kafka.properties) y << "    " << quoted(k) << ": " << quoted(v) << "\n";
  }
  y << "postgres:\n"
    << "  url: " << quoted(c.postgres.url) << "\n"
    << "  schema: " << quoted(c.postgres.schema) << "\n"
    << "worker: {max_batch: " << c.worker.max_batch << ", max_wait_ms: " << c.worker.max_wait_ms
    << ", connections: " << c.worker.connections
    << (c.worker.instance_id.empty() ? "" : ", instance_id: " + c.worker.instance_id) << "}\n"
    << "runs: {heartbeat_interval: " << c.runs.heartbeat_interval.count()
    << "ms, checkpoint_interval: " << c.runs.checkpoint_interval.count() << "ms}\n";
  if (!c.api.address.empty()) {
    y << "api: {address: " << quoted(c.api.address) << ", token_env: " << quoted(c.api.token_env) << "}\n";
  }
  y << "entities:\n";
  for (const auto& [name, e] : c.entities) {
    y << "  " << quoted(name) << ":\n"
      << "    table: " << quoted(e.table) << "\n"
      << "    key: " << quoted(e.key) << "\n"
      << "    audit: " << (e.audit ? "true" : "false") << "\n"
      << "    deletes: soft\n";
    if (!e.match_on.empty()) {
      y << "    match_on: [";
      for (std::size_t i = 0; i < e.match_on.size(); ++i) y << (i ? ", " : "") << quoted(e.match_on[i]);
      y << "]\n";
    }
    y << "    fields:\n";
    for (const auto& f : e.fields) {
      y << "      " << quoted(f.name) << ": {type: " << common::field_type_name(f.type)
        << ", required: " << (f.required ? "true" : "false");
      if (f.normalize != common::Normalize::kNone) y << ", normalize: " << normalize_name(f.normalize);
      if (f.type == common::FieldType::kTextList) {
        y << ", coerce: " << (f.coerce == common::ListCoerce::kReject ? "reject" : "wrap_scalar")
          << ", separator: " << quoted(f.separator);
      }
      y << "}\n";
    }
  }
  if (!c.sources.empty()) y << "sources:\n";
  for (const auto& s : c.sources) {
    y << "  - name: " << quoted(s.name) << "\n"
      << "    kind: " << quoted(s.kind) << "\n"
      << "    entity: " << quoted(s.entity) << "\n"
      << "    url: " << quoted(s.url) << "\n"
      << "    key_column: " << quoted(s.key_column) << "\n"
      << "    columns:\n";
    for (const auto& [column, field] : s.columns) y << "      " << quoted(column) << ": " << quoted(field) << "\n";
    y << "    on_missing: " << (s.on_missing == common::OnMissing::kIgnore ? "ignore" : "delete") << "\n"
      << "    allow_empty: " << (s.allow_empty ? "true" : "false") << "\n"
      << "    schedule: " << s.schedule.count() << "ms\n";
  }
  return y.str();
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "leadsync-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path) : log_path_(log_path) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  // Everything the child needs is prepared before fork: between fork and exec a multi-threaded
  // parent's child may only make async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path + ": " + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(log_fd);
    throw std::runtime_error("fork: " + std::string(std::strerror(e)));
  }
  if (pid == 0) {
    // Dies with the test (even if the test binary itself is killed), never outlives it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;
}

ChildProcess::~ChildProcess() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

bool ChildProcess::running() {
  if (status_ || pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return false;
  }
  return r == 0;
}

void ChildProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

std::string ChildProcess::describe() {
  if (running()) return "running";
  if (!status_) return "not started";
  if (WIFEXITED(*status_)) return "exited with status " + std::to_string(WEXITSTATUS(*status_));
  if (WIFSIGNALED(*status_)) return "killed by signal " + std::to_string(WTERMSIG(*status_));
  return "ended with wait status " + std::to_string(*status_);
}

std::string ChildProcess::log_tail(std::size_t max_bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const auto text = buffer.str();
  return text.size() <= max_bytes ? text : "..." + text.substr(text.size() - max_bytes);
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& log_path,
                          std::chrono::milliseconds timeout) {
  ChildProcess child(argv, log_path);
  const auto status = child.wait_exit(timeout);
  if (!status) child.signal(SIGKILL);
  CommandResult r;
  r.exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  r.output = child.log_tail(1 << 20);
  return r;
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool wait_for_topic_leaders(const common::Config& config) {
  return eventually(
      [&] {
        try {
          high_watermarks(config.kafka, config.kafka.topic, std::chrono::seconds(2));
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(30));
}

std::string lead_sheet(int rows, const std::string& note) {
  std::string s =
      "Lead ID,First name,Last name,Email,Phone,Company,Status,Assignee,Lead sources,Score,Created at,Updated at,Notes\n";
  s.reserve(static_cast<std::size_t>(rows) * 110);
  char line[256];
  for (int i = 1; i <= rows; ++i) {
    std::snprintf(line, sizeof line,
                  "L-%07d,Ann,Lee,ann%d@example.com,,Acme %d,new,,web,%d,2026-01-02 03:04:05,2026-01-02 03:04:05,", i,
                  i, i % 97, i % 1000);
    s += line;
    s += note;
    s += '\n';
  }
  return s;
}

// ------------------------------------------------------------------ events, headers and metrics

common::ChangeEvent change_event(const std::string& source, const std::string& entity, const std::string& key,
                                 leadsync::v1::Op op, int64_t source_version,
                                 const std::map<std::string, common::Value>& fields, const std::string& run_id) {
  common::ChangeEvent e;
  e.set_source(source);
  e.set_entity(entity);
  e.set_key(key);
  e.set_op(op);
  for (const auto& [name, value] : fields) (*e.mutable_fields())[name] = value;
  e.set_partial(false);
  e.set_source_version(source_version);
  e.set_observed_at_micros(std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
  e.set_checksum(common::fields_checksum(e.fields()));
  e.set_event_id(common::make_event_id(source, entity, key, source_version, e.checksum()));
  e.set_run_id(run_id);
  return e;
}

void produce_event(common::KafkaProducer& producer, const common::KafkaConfig& kafka, const common::ChangeEvent& event) {
  producer.produce(kafka.topic, event.entity() + "/" + event.key(), event.SerializeAsString());
}

std::string TopicRecord::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

TopicTail::TopicTail(const common::KafkaConfig& kafka, const std::string& topic) {
  auto conf = inspection_conf(kafka);
  std::string err;
  // A group id is required by the KafkaConsumer API; with assign() and no commits it is never joined.
  for (const auto& [k, v] : std::map<std::string, std::string>{{"group.id", "leadsync-tests-tail"},
                                                               {"enable.auto.commit", "false"},
                                                               {"enable.partition.eof", "false"},
                                                               {"fetch.wait.max.ms", "10"}}) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error("kafka tail config " + k + ": " + err);
  }
  consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer_) throw std::runtime_error("kafka tail: " + err);
  std::vector<std::unique_ptr<RdKafka::TopicPartition>> owned;
  std::vector<RdKafka::TopicPartition*> assignment;
  for (int32_t p = 0; p < kafka.partitions; ++p) {
    owned.emplace_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
    assignment.push_back(owned.back().get());
  }
  if (const auto rc = consumer_->assign(assignment); rc != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("kafka tail assign " + topic + ": " + RdKafka::err2str(rc));
  }
}

TopicTail::~TopicTail() {
  if (consumer_) consumer_->close();
}

std::optional<TopicRecord> TopicTail::next(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    std::unique_ptr<RdKafka::Message> msg(consumer_->consume(static_cast<int>(std::min<int64_t>(left.count(), 50))));
    if (!msg || msg->err() == RdKafka::ERR__TIMED_OUT) continue;
    if (msg->err() != RdKafka::ERR_NO_ERROR) throw std::runtime_error("kafka tail: " + msg->errstr());
    TopicRecord r;
    r.partition = msg->partition();
    r.offset = msg->offset();
    if (msg->key()) r.key = *msg->key();
    r.value.assign(static_cast<const char*>(msg->payload()), msg->len());
    if (const auto* headers = msg->headers()) {
      for (const auto& h : headers->get_all()) {
        r.headers[h.key()] = h.value() ? std::string(static_cast<const char*>(h.value()), h.value_size()) : "";
      }
    }
    return r;
  }
}

std::vector<TopicRecord> read_topic(const common::KafkaConfig& kafka, const std::string& topic,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto high = high_watermarks(kafka, topic, timeout);
  std::vector<TopicRecord> records;
  const auto wanted = static_cast<std::size_t>(sum(high));
  if (wanted == 0) return records;
  TopicTail tail(kafka, topic);
  while (records.size() < wanted) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto r = left.count() > 0 ? tail.next(left) : std::nullopt;
    if (!r) {
      throw std::runtime_error("read " + std::to_string(records.size()) + " of " + std::to_string(wanted) +
                               " messages of " + topic + " within " + std::to_string(timeout.count()) + " ms");
    }
    if (r->offset < high.at(static_cast<std::size_t>(r->partition))) records.push_back(std::move(*r));
  }
  std::sort(records.begin(), records.end(), [](const TopicRecord& a, const TopicRecord& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return records;
}

double metric_value(common::Telemetry& telemetry, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  double total = 0;
  for (const auto& family : telemetry.registry().Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      const bool match = std::all_of(labels.begin(), labels.end(), [&](const auto& want) {
        return std::any_of(metric.label.begin(), metric.label.end(),
                           [&](const auto& l) { return l.name == want.first && l.value == want.second; });
      });
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) total += metric.counter.value;
      if (family.type == prometheus::MetricType::Gauge) total += metric.gauge.value;
    }
  }
  return total;
}

void ExecutablesTest::start(const std::string& tag) {
  config_ = isolated_example_config(unique_tag(tag));
  config_.sources.at(0).url = dir_.file("leads.csv");
  env_ = std::make_unique<IsolatedEnvironment>(config_);
  write_text_file(dir_.file("leadsync.yaml"), config_yaml(config_));
  conn_ = connect(config_);
  store_ = std::make_unique<common::RunStore>(*conn_, std::chrono::seconds(1));
  ASSERT_TRUE(wait_for_topic_leaders(config_));
}

CommandResult ExecutablesTest::run(const std::string& binary, const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{std::string(LEADSYNC_BINARY_DIR) + binary, "--config", dir_.file("leadsync.yaml")};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, dir_.file("cmd-" + std::to_string(++calls_) + ".log"), timeout);
}

}  // namespace leadsync::testing

// The CSV adapter on its own: encodings (R2), file-level errors, and downloads into a private file.
#include "producers/csv/csv_source.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace leadsync::producers {
namespace {

namespace fs = std::filesystem;

// A directory of its own under the system temp directory, removed with its content.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "csv_source_test_XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~ScratchDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return (path / name).string();
  }
};

common::SourceConfig config_for(const std::string& url) {
  common::SourceConfig c;
  c.name = "sheet";
  c.url = url;
  c.http.max_attempts = 1;
  return c;
}

struct Read {
  std::vector<SourceRecord> records;
  std::vector<std::optional<std::string>> errors;
};

Read read_all(CsvSource& source) {
  Read r;
  source.open();
  SourceRecord record;
  std::optional<std::string> error;
  while (source.next(record, error)) {
    r.records.push_back(record);
    r.errors.push_back(error);
  }
  return r;
}

TEST(CsvSource, R2_RejectsARowThatIsNotUtf8NamingItsLineAndColumn) {
  ScratchDir dir;
  const auto path = dir.write("latin.csv", "id,name\n1,Ann\n2,Jos\xE9\n3,Bo\n");
  CsvSource source(config_for(path), {}, dir.path.string());
  const auto r = read_all(source);
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_FALSE(r.errors[0]);
  ASSERT_TRUE(r.errors[1]) << "a cp1252 byte must not pass as UTF-8";
  EXPECT_NE(r.errors[1]->find("line 3, column B"), std::string::npos) << *r.errors[1];
  EXPECT_NE(r.errors[1]->find("not valid UTF-8"), std::string::npos) << *r.errors[1];
  EXPECT_FALSE(r.errors[2]) << "one bad row does not stop the rest";
}

TEST(CsvSource, R2_RejectsANulByteInACell) {
  ScratchDir dir;
  const auto path = dir.write("nul.csv", std::string("id,name\n1,A\0n\n", 14));
  CsvSource source(config_for(path), {}, dir.path.string());
  const auto r = read_all(source);
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_TRUE(r.errors[0]);
  EXPECT_NE(r.errors[0]->find("NUL"), std::string::npos) << *r.errors[0];
}

TEST(CsvSource, ConvertsADeclaredCp1252OrLatin1File) {
  ScratchDir dir;
  const auto path = dir.write("excel.csv", "id,name\xE9\n1,Jos\xE9 \x80 \x93ok\x94\n");
  CsvSource cp1252(config_for(path), {common::TextEncoding::kCp1252}, dir.path.string());
  auto r = read_all(cp1252);
  EXPECT_EQ(cp1252.columns()[1], "name\xC3\xA9");
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_FALSE(r.errors[0]) << *r.errors[0];
  EXPECT_EQ(r.records[0].cells[1], "Jos\xC3\xA9 \xE2\x82\xAC \xE2\x80\x9Cok\xE2\x80\x9D");
  CsvSource latin1(config_for(path), {common::TextEncoding::kLatin1}, dir.path.string());
  r = read_all(latin1);
  EXPECT_EQ(r.records[0].cells[1], "Jos\xC3\xA9 \xC2\x80 \xC2\x93ok\xC2\x94");
}

TEST(CsvSource, R13_AFileThatEndsInsideAQuotedCellIsAFileError) {
  ScratchDir dir;
  const auto path = dir.write("open.csv", "id,name\n1,\"Ann\n2,Bo\n3,Cy\n");
  CsvSource source(config_for(path), {}, dir.path.string());
  EXPECT_THROW(read_all(source), std::runtime_error);
}

// A server for the sheet on loopback.
struct SheetServer {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  explicit SheetServer(const std::string& body, bool truncate = false) {
    server.Get("/sheet.csv", [=](const httplib::Request&, httplib::Response& res) {
      if (!truncate) {
        res.set_content(body, "text/csv");
        return;
      }
      res.set_content_provider(body.size() * 2, "text/csv", [=](size_t, size_t, httplib::DataSink& sink) {
        sink.write(body.data(), body.size());
        return false;
      });
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~SheetServer() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/sheet.csv"; }
};

TEST(CsvSource, R20_DownloadsIntoAPrivateFileAndFollowsNoPlantedSymlink) {
  ScratchDir dir;
  SheetServer server("id,name\n1,Ann\n");
  const auto victim = dir.write("victim", "precious");
  // The path the producer used to download to (<work dir>/<source name>.download.csv).
  fs::create_symlink(victim, dir.path / "sheet.download.csv");
  {
    CsvSource source(config_for(server.url()), {}, dir.path.string());
    const auto r = read_all(source);
    ASSERT_EQ(r.records.size(), 1u);
    int private_dirs = 0;
    for (const auto& entry : fs::directory_iterator(dir.path)) {
      if (!entry.is_directory() || entry.is_symlink()) continue;
      ++private_dirs;
      struct stat st {};
      ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0700u) << entry.path();
    }
    EXPECT_EQ(private_dirs, 1) << "the download lives in a private directory of its own";
  }
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    EXPECT_FALSE(entry.is_directory() && !entry.is_symlink()) << "left behind: " << entry.path();
  }
}

TEST(CsvSource, R13_ATruncatedDownloadFailsTheRead) {
  ScratchDir dir;
  SheetServer server("id,name\n1,Ann\n2,Bo\n", true);
  CsvSource source(config_for(server.url()), {}, dir.path.string());
  EXPECT_THROW(source.open(), std::runtime_error);
}


// Issue 10 item 3 (R4): a read resumed from a checkpoint continues with the record after it, line
// numbers and all, also when the checkpoint falls between the CR and the LF of a line end, and
// also across a quoted cell with a line break; a file that changed since is not resumed.
TEST(CsvSource, R4_AResumedReadContinuesWithTheRecordAfterTheCheckpoint) {
  ScratchDir dir;
  const std::string text = "id,note\r\n1,a\r\n2,\"two\r\nlines\"\r\n3,c\r\n4,d\r\n5,e";
  const auto path = dir.write("crlf.csv", text);
  CsvSource whole(config_for(path), {}, dir.path.string());
  const auto all = read_all(whole);
  ASSERT_EQ(all.records.size(), 5u);
  for (std::size_t k = 0; k <= all.records.size(); ++k) {
    CsvSource first(config_for(path), {}, dir.path.string());
    first.open();
    SourceRecord record;
    std::optional<std::string> error;
    for (std::size_t i = 0; i < k; ++i) ASSERT_TRUE(first.next(record, error));
    const auto checkpoint = first.checkpoint();
    ASSERT_TRUE(checkpoint);
    CsvSource second(config_for(path), {}, dir.path.string());
    ASSERT_TRUE(second.resume(*checkpoint)) << checkpoint->value;
    EXPECT_EQ(second.columns(), (std::vector<std::string>{"id", "note"}));
    std::size_t i = k;
    while (second.next(record, error)) {
      ASSERT_LT(i, all.records.size()) << "after record " << k;
      EXPECT_EQ(record.cells, all.records[i].cells) << "after record " << k;
      EXPECT_EQ(record.position, all.records[i].position) << "after record " << k;
      EXPECT_FALSE(error) << *error;
      ++i;
    }
    EXPECT_EQ(i, all.records.size()) << "after record " << k;
    EXPECT_DOUBLE_EQ(second.progress(), 1.0);
  }
  CsvSource first(config_for(path), {}, dir.path.string());
  first.open();
  const auto checkpoint = first.checkpoint();
  dir.write("crlf.csv", text + "\r\n6,f");
  CsvSource changed(config_for(path), {}, dir.path.string());
  EXPECT_FALSE(changed.resume(*checkpoint));
  EXPECT_FALSE(changed.resume(Checkpoint{"not a checkpoint"}));
}

}  // namespace
}  // namespace leadsync::producers

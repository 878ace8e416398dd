// leadsync-gen: writes deterministic sales-lead sheets, or the next version of one, for benchmarks
// and demos. See lead_data.h for what the rows look like.
//
//   leadsync-gen --rows 1000000 --seed 42 --out leads.csv
//   leadsync-gen --mutate leads.csv --out leads.v2.csv --change-fraction 0.01 --add-fraction 0.001
#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/gen/lead_data.h"

namespace {

namespace bench = leadsync::bench;

constexpr std::size_t kStreamBuffer = std::size_t{1} << 20;

// An output file or stdout ("-"), with a large buffer: small writes would bound the generator.
// A file that is not finish()ed is removed, so a failed run leaves no half-written sheet behind.
class Output {
 public:
  explicit Output(const std::string& path) : path_(path), buffer_(kStreamBuffer) {
    if (path == "-") return;
    file_.rdbuf()->pubsetbuf(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    file_.open(path, std::ios::binary | std::ios::trunc);
    if (!file_) throw std::runtime_error("cannot open --out " + path + " for writing");
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  ~Output() {
    if (!file_.is_open()) return;
    file_.close();
    // Only a regular file itself, not through a symlink: /dev/stdout -> /proc/self/fd/1 may point at
    // a regular file, and a failed run must not delete the link.
    std::error_code ignored;
    if (std::filesystem::is_regular_file(std::filesystem::symlink_status(path_, ignored))) {
      std::filesystem::remove(path_, ignored);
    }
  }

  std::ostream& stream() { return file_.is_open() ? file_ : std::cout; }

  void finish() {
    std::ostream& out = stream();
    out.flush();
    if (file_.is_open()) file_.close();
    if (!out) throw std::runtime_error("writing --out " + path_ + " failed (disk full?)");
  }

 private:
  std::string path_;
  std::vector<char> buffer_;  // declared before file_: the stream uses it until it is destroyed
  std::ofstream file_;
};

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return a != "-" && b != "-" && std::filesystem::equivalent(a, b, ec);
}

void generate(std::uint64_t rows, std::uint64_t seed, const std::string& out_path) {
  Output out(out_path);
  bench::write_lead_sheet(out.stream(), seed, rows);
  out.finish();
}

void mutate(const std::string& in_path, const std::string& out_path,
            const bench::MutationOptions& options) {
  if (same_file(in_path, out_path)) {
    throw std::invalid_argument("--out " + out_path +
                                " is the --mutate input: write the next version elsewhere");
  }
  std::ifstream file;
  if (in_path != "-") {
    file.open(in_path, std::ios::binary);
    if (!file) throw std::runtime_error("cannot open --mutate " + in_path + " for reading");
  }
  Output out(out_path);
  std::istream& in = in_path == "-" ? std::cin : file;
  const bench::MutationStats stats = bench::mutate_sheet(in, out.stream(), options);
  out.finish();
  // The summary goes to stdout unless the sheet does.
  (out_path == "-" ? std::cerr : std::cout) << bench::to_json(stats) << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  CLI::App app{"Writes deterministic sales-lead sheets (CSV), or the next version of one."};
  std::uint64_t rows = 0;
  std::string mutate_path, out_path;
  bench::MutationOptions options;
  options.seed = 42;

  auto* rows_opt = app.add_option("--rows", rows, "Generate a sheet with this many rows");
  auto* mutate_opt = app.add_option("--mutate", mutate_path,
                                    "Read this sheet ('-' = stdin) and write its next version");
  rows_opt->excludes(mutate_opt);
  app.add_option("--out", out_path, "Where to write the sheet ('-' = stdout)")->required();
  app.add_option("--seed", options.seed, "Same seed, same bytes")->capture_default_str();
  const auto mutation_option = [&](const char* name, double& value, const char* help) {
    app.add_option(name, value, help)->capture_default_str()->needs(mutate_opt);
  };
  mutation_option("--change-fraction", options.change_fraction, "Share of rows changed, in [0, 1]");
  mutation_option("--delete-fraction", options.delete_fraction, "Share of rows deleted, in [0, 1]");
  mutation_option("--add-fraction", options.add_fraction,
                  "New rows appended, as a share of the input rows, in [0, 100]");
  CLI11_PARSE(app, argc, argv);

  try {
    if (!*rows_opt && !*mutate_opt) throw std::invalid_argument("give --rows N or --mutate FILE");
    if (*rows_opt) {
      generate(rows, options.seed, out_path);
    } else {
      if (const std::string problem = bench::validate(options); !problem.empty()) {
        throw std::invalid_argument(problem);
      }
      mutate(mutate_path, out_path, options);
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "leadsync-gen: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "leadsync-gen: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

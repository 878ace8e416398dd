// fake-twenty: the fake Twenty CRM server as a process, for manual runs and for tests that want it
// out of process. Seeds people and companies, prints "listening on PORT" and serves until SIGINT or
// SIGTERM. /_fake/stats and /_fake/fail are its controls (fake_twenty.h).
#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "tests/fakes/twenty/fake_twenty.h"

int main(int argc, char** argv) {
  using namespace leadsync::fakes::twenty;
  CLI::App app{"fake Twenty CRM REST server (tests only)"};
  FakeTwentyOptions options;
  int people = 0, companies = 0, rate_limit = 0;
  std::string webhook_url, webhook_secret;
  app.add_option("--host", options.host, "address to listen on (loopback)")->capture_default_str();
  app.add_option("--port", options.port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--api-key", options.api_key, "the bearer token the API accepts")->capture_default_str();
  app.add_option("--people", people, "people to seed");
  app.add_option("--companies", companies, "companies to seed");
  app.add_option("--rate-limit", rate_limit, "requests per minute before 429 (0: none)");
  app.add_option("--webhook-url", webhook_url, "send a signed webhook for every change to this http URL");
  app.add_option("--webhook-secret", webhook_secret, "the webhook signing secret");
  CLI11_PARSE(app, argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: only sigwait sees them

  FakeTwenty fake(options);
  fake.store().seed_people(people);
  fake.store().seed_companies(companies);
  if (rate_limit > 0) fake.set_rate_limit(rate_limit, std::chrono::minutes(1));
  if (!webhook_url.empty()) fake.set_webhook(webhook_url, webhook_secret, WebhookMode::kSend);
  std::printf("listening on %d\n", fake.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}

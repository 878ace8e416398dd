// Error vocabulary shared by every component. The class of an error decides what happens next:
//  - ConfigError: bad configuration or usage; the process exits 2 before starting anything.
//  - PermanentError: this record can never succeed as it is (undecodable, unmappable, constraint);
//    it goes to the dead-letter topic at once.
//  - RetryableError: this record may succeed later (lock timeout, serialization failure); it goes
//    to the next retry tier.
//  - InfraError: a dependency is down (PostgreSQL unreachable); nothing is wrong with the records,
//    so the worker pauses and waits instead of retrying records.
#pragma once

#include <stdexcept>
#include <string>

namespace leadsync::common {

enum class ErrorClass { kPermanent, kRetryable, kInfrastructure };

const char* error_class_name(ErrorClass c) noexcept;

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ClassifiedError : public std::runtime_error {
 public:
  ClassifiedError(ErrorClass cls, const std::string& what) : std::runtime_error(what), cls_(cls) {}
  ErrorClass error_class() const noexcept { return cls_; }

 private:
  ErrorClass cls_;
};

}  // namespace leadsync::common

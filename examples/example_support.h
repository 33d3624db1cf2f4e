// What the networked examples share: their `--name=value` flags and the
// client's join of its connection tasks. Kept tiny so that each example
// still reads on its own.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "weft/weft.h"

namespace weft_examples {

// Flags after the mode argument: `--name=value`, or `--name` meaning "1".
// Anything else is an error naming the argument.
class Flags {
 public:
  Flags(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.rfind("--", 0) != 0 || a.size() == 2) {
        throw std::invalid_argument("unexpected argument '" + a + "' (flags are --name=value)");
      }
      const auto eq = a.find('=');
      values_[a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2)] =
          eq == std::string::npos ? "1" : a.substr(eq + 1);
    }
  }

  // The flag as a whole number; std::invalid_argument if it is not one.
  long number(const std::string& name, long fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    const std::string& v = it->second;
    long out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size()) {
      throw std::invalid_argument("--" + name + ": expected a whole number, got '" + v + "'");
    }
    return out;
  }
  // The flag as a duration: seconds, fractions allowed ("10", "0.25"), or
  // with a unit ("250ms", "10s"). std::invalid_argument if it is not one or
  // is not positive.
  std::chrono::nanoseconds duration(const std::string& name,
                                    std::chrono::nanoseconds fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    std::string_view v = it->second;
    double scale = 1e9;  // seconds
    if (v.ends_with("ms")) {
      scale = 1e6;
      v.remove_suffix(2);
    } else if (v.ends_with("s")) {
      v.remove_suffix(1);
    }
    double amount = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), amount);
    if (ec != std::errc() || end != v.data() + v.size() || !(amount > 0) ||
        amount * scale > 1e18) {
      throw std::invalid_argument("--" + name + ": expected a positive duration (10, 0.5s, 250ms), got '" +
                                  it->second + "'");
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(amount * scale));
  }
  // std::invalid_argument naming the first flag given that is not in `known`
  // (a misspelt flag is an error, not a default).
  void only(std::initializer_list<std::string_view> known) const {
    for (const auto& [name, value] : values_) {
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      std::string list;
      for (std::string_view k : known) list.append(" --").append(k);
      throw std::invalid_argument("unknown flag --" + name + " (this mode takes" + list + ")");
    }
  }
  std::string text(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }

 private:
  std::map<std::string, std::string> values_;
};

// Joins every client connection task; each returns how many `unit`s it
// completed. Prints "OK <total> <unit>" and returns 0, or reports every
// failed connection on stderr (prefixed with `who`) and returns 1.
inline weft::Coro<int> join_clients(std::vector<weft::Task<long>> tasks, std::string who,
                                    std::string unit) {
  long total = 0;
  int failures = 0;
  for (auto& t : tasks) {
    try {
      total += co_await t;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", who.c_str(), e.what());
      ++failures;
    }
  }
  if (failures > 0) co_return 1;
  std::printf("OK %ld %s\n", total, unit.c_str());
  co_return 0;
}

// Graceful shutdown of a server: no new connections, `grace` for the open
// ones to finish, then the rest are closed; returns once all are gone. The
// grace step is a child of a task group, so it is over before the call
// returns, also when the call is cancelled: nothing touches `server`
// afterwards. (A timer callback holding `&server` would not do: cancelling
// a timer from another worker cannot stop a callback that has begun.)
inline weft::Coro<void> close_clients_after(weft::Server& server, weft::Duration grace) {
  co_await weft::sleep(grace);
  server.close_clients();
}

inline weft::Coro<void> close_gracefully(weft::Server& server, weft::Duration grace) {
  server.close();
  co_await weft::task_group([&](weft::TaskGroup& tg) -> weft::Coro<void> {
    weft::Task<void> closer = tg.create_task(close_clients_after(server, grace), "grace period");
    co_await server.wait_closed();
    closer.cancel();  // a cancelled child is no failure of the group
  });
}

}  // namespace weft_examples

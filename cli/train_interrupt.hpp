// Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a job scheduler, `kill`).
//
// The handler only records the signal (an async-signal-safe write of a sig_atomic_t); the training
// loop checks stop_signal() between optimiser steps, writes a checkpoint of the exact position
// (atomically: a rename over the previous one) and exits with 128 + the signal number. A second
// signal while that happens gets the default action (SA_RESETHAND): the previous checkpoint is
// still whole, because files only appear by rename. `loupe train --resume` then continues byte for
// byte as if never stopped (tests/cli/test_interrupt.cpp).
//
// LOUPE_TEST_INTERRUPT_AFTER_STEP=N (tests only) makes the run raise SIGINT itself after its Nth
// optimiser step, so that a test can interrupt at an exact step through the real handler.
#pragma once

#include <csignal>
#include <cstdlib>
#include <string>

namespace loupe::cli {

namespace detail {
inline volatile std::sig_atomic_t stop_signal_number = 0;
inline void record_stop_signal(int signal) { stop_signal_number = signal; }
}  // namespace detail

// Installs the handlers for its lifetime and restores the previous ones afterwards (the tests run
// the command in-process).
class StopSignals {
 public:
  StopSignals() {
    detail::stop_signal_number = 0;
    struct sigaction action = {};
    action.sa_handler = detail::record_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
    if (const char* step = std::getenv("LOUPE_TEST_INTERRUPT_AFTER_STEP")) interrupt_after_ = std::atoll(step);
  }
  ~StopSignals() {
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal that asked the run to stop (0: none). `global_step` drives the test hook.
  int stop_signal(int64_t global_step) const {
    if (interrupt_after_ > 0 && global_step == interrupt_after_ && detail::stop_signal_number == 0) std::raise(SIGINT);
    return detail::stop_signal_number;
  }

 private:
  struct sigaction previous_int_ = {}, previous_term_ = {};
  int64_t interrupt_after_ = 0;
};

inline std::string signal_name(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal " + std::to_string(signal);
}

}  // namespace loupe::cli

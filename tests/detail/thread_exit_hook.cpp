// run_at_thread_exit(): a thread_local that runs a function when its thread
// exits. In a translation unit of its own, with no sluice header, so that
// its destructor is registered when a thread first calls this, not at once
// with the thread_locals of a translation unit that includes sluice (GCC
// constructs those together, in the order they are defined).
#include <functional>
#include <utility>

namespace {

struct exit_hook {
  std::function<void()> run;
  exit_hook() = default;
  exit_hook(const exit_hook&) = delete;
  exit_hook& operator=(const exit_hook&) = delete;
  ~exit_hook() {
    if (run) run();
  }
};

thread_local exit_hook this_thread_exit_hook;

}  // namespace

void run_at_thread_exit(std::function<void()> f) { this_thread_exit_hook.run = std::move(f); }

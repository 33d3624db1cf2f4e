#include "weft/core/context.h"

namespace weft::detail {
namespace {
thread_local ContextData t_thread_context;
thread_local ContextData* t_current = nullptr;
std::atomic<std::uint64_t> g_next_var_id{1};
}  // namespace

ContextData& current_context_data() noexcept {
  return t_current != nullptr ? *t_current : t_thread_context;
}

ContextScope::ContextScope(ContextData* slot) noexcept : prev_(t_current) { t_current = slot; }
ContextScope::~ContextScope() { t_current = prev_; }

std::uint64_t next_context_var_id() noexcept {
  // Relaxed: ids only need to be unique.
  return g_next_var_id.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace weft::detail

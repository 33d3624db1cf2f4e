#include "weft/sched/detail/timer_heap.h"

namespace weft::detail {

RefPtr<TimerEntry> TimerHeap::add(TimePoint deadline, Callback cb) {
  auto* e = new TimerEntry(deadline, std::move(cb), this);  // the heap's reference
  e->seq_ = next_seq_++;
  heap_.push_back(e);
  e->index_ = heap_.size() - 1;
  sift_up(e->index_);
  return RefPtr<TimerEntry>(e);
}

void TimerHeap::sift_up(std::size_t i) noexcept {
  TimerEntry* e = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 4;
    if (!less(e, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, e);
}

void TimerHeap::sift_down(std::size_t i) noexcept {
  TimerEntry* e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    std::size_t end = first + 4 < n ? first + 4 : n;
    for (std::size_t c = first + 1; c < end; ++c) {
      if (less(heap_[c], heap_[best])) best = c;
    }
    if (!less(heap_[best], e)) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, e);
}

void TimerHeap::remove(TimerEntry* e) noexcept {
  std::size_t i = e->index_;
  if (i == SIZE_MAX) return;
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  e->index_ = SIZE_MAX;
  if (last != e) {
    place(i, last);
    sift_down(i);
    sift_up(last->index_);
  }
  e->release();
}

void TimerHeap::pop_top() noexcept { remove(heap_.front()); }

TimePoint TimerHeap::next_deadline() noexcept {
  while (!heap_.empty() && !heap_.front()->armed()) pop_top();
  return heap_.empty() ? TimePoint::max() : heap_.front()->deadline_;
}

bool TimerHeap::pop_one_due(TimePoint now, Callback* out) {
  while (!heap_.empty()) {
    TimerEntry* e = heap_.front();
    if (e->armed() && e->deadline_ > now) return false;
    bool fire = e->try_fire();
    if (fire) *out = std::move(e->cb_);
    pop_top();
    if (fire) return true;
  }
  return false;
}

void TimerHeap::clear() noexcept {
  std::vector<TimerEntry*> entries;
  entries.swap(heap_);
  for (TimerEntry* e : entries) {
    e->index_ = SIZE_MAX;
    e->release();  // may run the callback's destructor
  }
}

}  // namespace weft::detail

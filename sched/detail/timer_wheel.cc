#include "weft/sched/detail/timer_wheel.h"

#include <algorithm>
#include <bit>

#include "weft/core/detail/weft_dcheck.h"

namespace weft::detail {

int TimerWheel::level_for(std::uint64_t elapsed, std::uint64_t tick) noexcept {
  // The highest tick bit in which they differ picks the level (at least 0).
  const std::uint64_t masked = (elapsed ^ tick) | (kSlots - 1);
  const int significant = 63 - std::countl_zero(masked);
  return std::min(significant / kSlotBits, kLevels - 1);
}

RefPtr<TimerEntry> TimerWheel::add(TimePoint deadline, TimePoint now, Callback cb) {
  auto* e = new TimerEntry(deadline, std::move(cb));  // the wheel's reference and the caller's
  ++size_;
  // Valid: the heap's entries stay at or before elapsed_, and there is no
  // wheel entry to pass. (A non-empty wheel catches up in pop_one_due.)
  if (in_wheel_ == 0) elapsed_ = std::max(elapsed_, tick_of(now.time_since_epoch().count()));
  insert(e);
  return RefPtr<TimerEntry>(e, kAdoptRef);
}

// FIFO among equal deadlines: entries with one tick always share a slot (at
// any elapsed_, level_for gives them the same level, and an entry never
// stays behind elapsed_), are appended to it, and leave it in list order;
// the heap numbers them as they come. One with a tick at or before elapsed_
// goes to the heap at once, after every earlier one of its tick.
void TimerWheel::insert(TimerEntry* e) noexcept {
  const std::uint64_t tick = tick_of(e->deadline_ns_);
  if (tick <= elapsed_) {
    heap_push(e);
    return;
  }
  const int level = level_for(elapsed_, tick);
  link(e, level, static_cast<int>((tick >> (kSlotBits * level)) & (kSlots - 1)));
}

void TimerWheel::link(TimerEntry* e, int level, int slot) noexcept {
  // In nothing yet; later than elapsed_, at the level that agrees with it.
  WEFT_DCHECK(e->where_ == TimerEntry::kNowhere);
  WEFT_DCHECK(tick_of(e->deadline_ns_) > elapsed_);
  WEFT_DCHECK(level == level_for(elapsed_, tick_of(e->deadline_ns_)));
  Slot& s = slots_[level][slot];
  e->where_ = TimerEntry::kInWheel;
  e->level_ = static_cast<std::uint8_t>(level);
  e->slot_ = static_cast<std::uint8_t>(slot);
  e->at_.wheel.next = nullptr;
  e->at_.wheel.prev = s.tail;
  if (s.tail != nullptr) {
    s.tail->at_.wheel.next = e;
  } else {
    s.head = e;
    occupied_[level] |= std::uint64_t{1} << slot;
  }
  s.tail = e;
  ++in_wheel_;
}

void TimerWheel::unlink(TimerEntry* e) noexcept {
  WEFT_DCHECK(e->where_ == TimerEntry::kInWheel);
  Slot& s = slots_[e->level_][e->slot_];
  TimerEntry* prev = e->at_.wheel.prev;
  TimerEntry* next = e->at_.wheel.next;
  if (prev != nullptr) {
    prev->at_.wheel.next = next;
  } else {
    s.head = next;
  }
  if (next != nullptr) {
    next->at_.wheel.prev = prev;
  } else {
    s.tail = prev;
  }
  if (s.head == nullptr) occupied_[e->level_] &= ~(std::uint64_t{1} << e->slot_);
  e->at_.wheel = {};
  e->where_ = TimerEntry::kNowhere;
  --in_wheel_;
}

bool TimerWheel::next_slot(int* level, int* slot, std::uint64_t* start) const noexcept {
  if (in_wheel_ == 0) return false;
  int l = 0;
  while (occupied_[l] == 0) ++l;
  const int shift = kSlotBits * l;
  const int pos = static_cast<int>((elapsed_ >> shift) & (kSlots - 1));
  const std::uint64_t ahead = occupied_[l] & (~std::uint64_t{0} << pos);
  WEFT_DCHECK(ahead != 0 && "a wheel entry behind elapsed_");
  const int window_bits = shift + kSlotBits;
  const std::uint64_t window =
      window_bits >= 64 ? 0 : elapsed_ & ~((std::uint64_t{1} << window_bits) - 1);
  *level = l;
  *slot = std::countr_zero(ahead);
  *start = window + (static_cast<std::uint64_t>(*slot) << shift);
  return true;
}

bool TimerWheel::pull_next() noexcept {
  int level;
  int slot;
  std::uint64_t start;
  if (!next_slot(&level, &slot, &start)) return false;
  // No entry of the wheel lies before this slot: elapsed_ may advance to
  // its start (level 0: to the entries' tick, which sends them to the heap).
  elapsed_ = std::max(elapsed_, start);
  Slot& s = slots_[level][slot];
  TimerEntry* e = s.head;
  s.head = s.tail = nullptr;
  occupied_[level] &= ~(std::uint64_t{1} << slot);
  // In list order, so entries that land in one slot again keep their order.
  while (e != nullptr) {
    TimerEntry* next = e->at_.wheel.next;
    --in_wheel_;
    e->at_.wheel = {};
    e->where_ = TimerEntry::kNowhere;
    insert(e);  // a lower level, or the heap
    e = next;
  }
  return true;
}

bool TimerWheel::cancel(TimerEntry* e, bool drop_caller) noexcept {
  const bool cancelled = e->cancel_on_loop();
  std::uint32_t drops = drop_caller ? 1 : 0;
  // Still held here means not fired, so cancelled now (by this call or by
  // another thread's try_cancel): out it goes, with the wheel's reference.
  if (e->where_ != TimerEntry::kNowhere) {
    if (e->where_ == TimerEntry::kInWheel) {
      unlink(e);
    } else {
      heap_erase(e);
    }
    --size_;
    ++drops;
  }
  if (drops != 0) e->release(drops);
  return cancelled;
}

void TimerWheel::drop_cancelled_top() noexcept {
  while (!heap_.empty() && !heap_.front()->armed()) {
    TimerEntry* e = heap_.front();
    heap_erase(e);
    --size_;
    e->release();
  }
}

TimePoint TimerWheel::next_deadline() noexcept {
  for (;;) {
    drop_cancelled_top();
    if (!heap_.empty()) return TimePoint(Duration(heap_.front()->deadline_ns_));
    if (!pull_next()) return TimePoint::max();
  }
}

bool TimerWheel::pop_one_due(TimePoint now, Callback* out) {
  const std::int64_t now_ns = now.time_since_epoch().count();
  const std::uint64_t now_tick = tick_of(now_ns);
  for (;;) {
    drop_cancelled_top();
    if (!heap_.empty()) {
      TimerEntry* e = heap_.front();
      // Every wheel entry is later than every heap entry: none is due.
      if (e->deadline_ns_ > now_ns) break;
      heap_erase(e);
      --size_;
      const bool fire = e->try_fire();
      if (fire) *out = std::move(e->cb_);
      e->release();
      if (fire) return true;
      continue;
    }
    int level;
    int slot;
    std::uint64_t start;
    if (!next_slot(&level, &slot, &start) || start > now_tick) break;
    pull_next();
  }
  // No wheel entry is due: catch up with the clock. Valid because every
  // wheel entry lies at or after the next slot's start, past now, and the
  // heap's entries are before the old elapsed_.
  int level;
  int slot;
  std::uint64_t start;
  if (!next_slot(&level, &slot, &start) || start > now_tick) {
    elapsed_ = std::max(elapsed_, now_tick);
  }
  return false;
}

void TimerWheel::clear() noexcept {
  std::vector<TimerEntry*> entries;
  entries.swap(heap_);
  for (auto& level : slots_) {
    for (Slot& s : level) {
      for (TimerEntry* e = s.head; e != nullptr; e = e->at_.wheel.next) entries.push_back(e);
      s.head = s.tail = nullptr;
    }
  }
  occupied_.fill(0);
  in_wheel_ = 0;
  size_ = 0;
  for (TimerEntry* e : entries) {
    e->where_ = TimerEntry::kNowhere;
    e->release();  // may run the callback's destructor
  }
}

// --- the heap: 4-ary, ordered by (deadline, seq) ------------------------------------

void TimerWheel::heap_push(TimerEntry* e) noexcept {
  // The heap holds only entries at or before elapsed_ (so before every wheel entry).
  WEFT_DCHECK(e->where_ == TimerEntry::kNowhere);
  WEFT_DCHECK(tick_of(e->deadline_ns_) <= elapsed_);
  e->where_ = TimerEntry::kInHeap;
  e->at_.heap.seq = next_seq_++;
  heap_.push_back(e);
  e->at_.heap.index = static_cast<std::uint32_t>(heap_.size() - 1);
  sift_up(e->at_.heap.index);
}

void TimerWheel::heap_erase(TimerEntry* e) noexcept {
  WEFT_DCHECK(e->where_ == TimerEntry::kInHeap && e->at_.heap.index < heap_.size() &&
              heap_[e->at_.heap.index] == e);
  const std::size_t i = e->at_.heap.index;
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  e->where_ = TimerEntry::kNowhere;
  if (last != e) {
    heap_place(i, last);
    sift_down(i);
    sift_up(last->at_.heap.index);
  }
}

void TimerWheel::sift_up(std::size_t i) noexcept {
  TimerEntry* e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 4;
    if (!earlier(e, heap_[parent])) break;
    heap_place(i, heap_[parent]);
    i = parent;
  }
  heap_place(i, e);
}

void TimerWheel::sift_down(std::size_t i) noexcept {
  TimerEntry* e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t end = std::min(first + 4, n);
    for (std::size_t c = first + 1; c < end; ++c) {
      if (earlier(heap_[c], heap_[best])) best = c;
    }
    if (!earlier(heap_[best], e)) break;
    heap_place(i, heap_[best]);
    i = best;
  }
  heap_place(i, e);
}

}  // namespace weft::detail

// The power-failure simulator: what becomes durable when, the crash images
// it builds, and that crash exploration catches a wrong persist ordering and
// passes a right one.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <thread>

#include "powerfail/crash.h"
#include "powerfail/simulator.h"

namespace daxstore::powerfail {
namespace {

struct Sim {
  std::shared_ptr<Simulator> sim;
  Mapping map;
};

Sim MakeSim(size_t size) {
  auto s = Simulator::Create(size);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  auto m = (*s)->Map();
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return {*s, std::move(m).value()};
}

uint64_t MediaWord(const Simulator& s, size_t off) {
  uint64_t v;
  std::memcpy(&v, s.Media().data() + off, 8);
  return v;
}

TEST(PowerFailSimulator, MappingDescribesItself) {
  Sim s = MakeSim(1000);
  EXPECT_EQ(s.map.size(), 1024u);  // whole lines
  EXPECT_EQ(s.map.info().kind, MappingKind::kSimulated);
  EXPECT_EQ(s.map.granularity(), Granularity::kCacheLine);
  EXPECT_EQ(s.map.data(), s.sim->working());
  EXPECT_TRUE(s.map.BadBlocks().ok());
  EXPECT_TRUE(s.map.DeepFlush(s.map.data(), 8).ok());
}

TEST(PowerFailSimulator, FromMemoryRejectsMissingFunctions) {
  uint64_t mem[8] = {};
  auto m = Mapping::FromMemory(mem, sizeof mem, Granularity::kCacheLine,
                               PersistOps{}, nullptr, "x");
  EXPECT_EQ(m.status().kind(), ErrorKind::kInvalidArgument);
}

TEST(PowerFailSimulator, StoresAreDurableOnlyAfterFlushAndFence) {
  Sim s = MakeSim(4096);
  auto* w = reinterpret_cast<uint64_t*>(s.map.data());
  w[0] = 7;
  EXPECT_EQ(MediaWord(*s.sim, 0), 0u);
  EXPECT_EQ(s.sim->DirtyLines(), std::vector<size_t>{0});
  s.map.Flush(&w[0], 8);
  EXPECT_EQ(MediaWord(*s.sim, 0), 0u);  // flushed, not fenced
  s.map.Drain();
  EXPECT_EQ(MediaWord(*s.sim, 0), 7u);
  EXPECT_TRUE(s.sim->DirtyLines().empty());
  w[9] = 5;  // line 1
  s.map.Persist(&w[9], 8);
  EXPECT_EQ(MediaWord(*s.sim, 72), 5u);
  EXPECT_EQ(s.sim->fences(), 2u);
}

TEST(PowerFailSimulator, StoreAfterFlushIsNotCoveredByIt) {
  Sim s = MakeSim(4096);
  auto* w = reinterpret_cast<uint64_t*>(s.map.data());
  w[0] = 1;
  s.map.Flush(w, 8);
  w[1] = 2;  // same line, after the flush
  s.map.Drain();
  EXPECT_EQ(MediaWord(*s.sim, 0), 1u);
  EXPECT_EQ(MediaWord(*s.sim, 8), 0u);
}

TEST(PowerFailSimulator, CopyFlagsDecideFlushAndFence) {
  Sim s = MakeSim(4096);
  uint8_t src[200];
  std::memset(src, 0xab, sizeof src);
  uint8_t* d = s.map.bytes();
  s.map.MemcpyPersist(d, src, sizeof src, kCopyNoFlush);
  EXPECT_EQ(s.sim->Media()[0], 0);
  s.map.MemcpyPersist(d, src, sizeof src, kCopyNoDrain);
  EXPECT_EQ(s.sim->Media()[199], 0);
  s.map.Drain();
  EXPECT_EQ(s.sim->Media()[199], 0xab);
  s.map.MemsetPersist(d + 1024, 0xcd, 100);
  EXPECT_EQ(s.sim->Media()[1123], 0xcd);
  s.map.MemmovePersist(d + 2048, d + 1024, 100);
  EXPECT_EQ(s.sim->Media()[2048], 0xcd);
}

TEST(PowerFailSimulator, FenceOrdersOnlyTheCallingThreadsFlushes) {
  Sim s = MakeSim(4096);
  auto* w = reinterpret_cast<uint64_t*>(s.map.data());
  std::thread t([&] {
    w[0] = 3;
    s.map.Flush(w, 8);
  });
  t.join();
  s.map.Drain();  // another thread's fence
  EXPECT_EQ(MediaWord(*s.sim, 0), 0u);
}

TEST(PowerFailSimulator, CrashImagesKeepLoseOrTearLines) {
  Sim s = MakeSim(4096);
  std::memset(s.map.data(), 0xff, 128);  // lines 0 and 1 dirty
  CrashPoint pt = s.sim->Capture();
  ASSERT_EQ(pt.dirty, (std::vector<size_t>{0, 1}));
  std::mt19937_64 rng(1);
  auto lost = Materialize(
      pt, [](size_t) { return Fate::kLost; }, rng);
  auto kept = Materialize(
      pt, [](size_t) { return Fate::kKept; }, rng);
  EXPECT_EQ(lost[0], 0);
  EXPECT_EQ(kept[127], 0xff);
  // Torn lines: every word all-old or all-new, and over many draws both
  // outcomes happen for each word.
  std::set<std::pair<int, bool>> seen;
  for (int i = 0; i < 64; ++i) {
    auto img = Materialize(
        pt, [](size_t) { return Fate::kPartial; }, rng);
    for (int wd = 0; wd < 16; ++wd) {
      std::set<uint8_t> bytes(img.begin() + wd * 8, img.begin() + wd * 8 + 8);
      ASSERT_EQ(bytes.size(), 1u) << "word " << wd << " torn below 8 bytes";
      seen.insert({wd, *bytes.begin() == 0xff});
    }
  }
  EXPECT_EQ(seen.size(), 32u);
}

// A record: 24 bytes of payload in lines 1..2 (crossing a line) and a
// "valid" flag in line 0 that publishes it.
constexpr size_t kPayload = 100, kPayloadLen = 64;

void WritePayload(Mapping& m) {
  for (size_t i = 0; i < kPayloadLen; ++i) m.bytes()[kPayload + i] = i + 1;
}

Status CheckPublished(Mapping m, const CrashCase&) {
  uint64_t flag;
  std::memcpy(&flag, m.bytes(), 8);
  if (flag == 0) return Status::Ok();
  if (flag != 1) return Corruption("flag torn: " + std::to_string(flag));
  for (size_t i = 0; i < kPayloadLen; ++i) {
    if (m.bytes()[kPayload + i] != i + 1) {
      return Corruption("flag set but payload byte " + std::to_string(i) +
                        " missing");
    }
  }
  return Status::Ok();
}

TEST(PowerFailExplore, CatchesFlagPersistedBeforeItsData) {
  auto none = [](Mapping) { return Status::Ok(); };
  auto wrong = [](Mapping m) {
    WritePayload(m);
    uint64_t one = 1;
    m.MemcpyPersist(m.bytes(), &one, 8);  // flag first: wrong
    m.Persist(m.bytes() + kPayload, kPayloadLen);
    return Status::Ok();
  };
  ExploreReport r = Explore(4096, none, wrong, CheckPublished);
  EXPECT_EQ(r.status.kind(), ErrorKind::kCorruption) << r.status.ToString();
  EXPECT_NE(r.status.message().find("seed"), std::string::npos);
}

TEST(PowerFailExplore, CatchesFlagStoredBeforeDataIsFenced) {
  // Subtler: data flushed but not fenced when the flag is stored; a crash
  // can keep the flag's line (evicted early) and lose the data.
  auto none = [](Mapping) { return Status::Ok(); };
  auto wrong = [](Mapping m) {
    WritePayload(m);
    m.Flush(m.bytes() + kPayload, kPayloadLen);
    uint64_t one = 1;
    std::memcpy(m.bytes(), &one, 8);
    m.Persist(m.bytes(), 8);
    return Status::Ok();
  };
  ExploreReport r = Explore(4096, none, wrong, CheckPublished);
  EXPECT_FALSE(r.status.ok());
}

TEST(PowerFailExplore, PassesDataPersistedBeforeFlag) {
  auto none = [](Mapping) { return Status::Ok(); };
  auto right = [](Mapping m) {
    WritePayload(m);
    m.Persist(m.bytes() + kPayload, kPayloadLen);  // data durable first
    uint64_t one = 1;
    m.MemcpyPersist(m.bytes(), &one, 8);
    return Status::Ok();
  };
  ExploreReport r = Explore(4096, none, right, CheckPublished);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.fences, 2u);
  EXPECT_EQ(r.points, 3u);  // before each fence, and after the operation
  EXPECT_GT(r.images, 3u);
}

TEST(PowerFailExplore, SamplesLongSequencesWithASeed) {
  auto none = [](Mapping) { return Status::Ok(); };
  auto many = [](Mapping m) {
    for (int i = 0; i < 500; ++i) {
      m.bytes()[i] = 1;
      m.Persist(m.bytes() + i, 1);
    }
    return Status::Ok();
  };
  // Durable prefix property: byte i set implies every byte before it set.
  auto prefix = [](Mapping m, const CrashCase&) {
    for (int i = 1; i < 500; ++i) {
      if (m.bytes()[i] && !m.bytes()[i - 1]) return Corruption("gap");
    }
    return Status::Ok();
  };
  ExploreOptions o;
  o.max_points = 20;
  o.seed = 42;
  ExploreReport r = Explore(4096, none, many, prefix, o);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.fences, 500u);
  EXPECT_EQ(r.points, 21u);
}

}  // namespace
}  // namespace daxstore::powerfail

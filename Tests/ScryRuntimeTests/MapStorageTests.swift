import ScryLanguage
import Testing

@testable import ScryRuntime

@Suite struct MapStorageTests {
  @Test func insertLookupRemove() {
    let m = Fixture.map("@x", keys: [.int64], value: .int64)
    Fixture.slot(m, [.int(1)]).storeBytes(of: 42, as: UInt64.self)
    #expect(m.count == 1)
    #expect(Fixture.slot(m, [.int(1)]).load(as: UInt64.self) == 42)
    let key = Fixture.pack([.int(1)])
    key.withUnsafeBytes { k in
      let h = MapStorage.hash(k.baseAddress!, count: 8)
      #expect(m.remove(key: k.baseAddress!, hash: h))
      #expect(!m.remove(key: k.baseAddress!, hash: h))
      #expect(m.lookup(key: k.baseAddress!, hash: h, insert: false) == nil)
    }
    #expect(m.count == 0)
  }

  @Test func keylessMapHasOneEntry() {
    let m = Fixture.map("@", value: .int64)
    Fixture.slot(m, []).storeBytes(of: 7, as: UInt64.self)
    #expect(Fixture.slot(m, []).load(as: UInt64.self) == 7)
    #expect(m.count == 1)
    #expect(m.keySize == 0)
  }

  @Test func growthKeepsEveryEntryInInsertionOrder() {
    let m = Fixture.map("@x", keys: [.int64, .string(capacity: 16)], value: .int64, maxEntries: 100_000)
    for i in 0..<10_000 { Fixture.slot(m, [.int(Int64(i)), .str("k\(i % 7)", 16)]).storeBytes(of: UInt64(i), as: UInt64.self) }
    #expect(m.count == 10_000)
    var seen: [UInt64] = []
    m.forEach { key, value in
      #expect(key.load(as: UInt64.self) == value.load(as: UInt64.self))
      seen.append(value.load(as: UInt64.self))
    }
    #expect(seen == (0..<10_000).map { UInt64($0) })
  }

  @Test func removalsThenInsertsReuseSpace() {
    let m = Fixture.map("@x", keys: [.int64], value: .int64, maxEntries: 50)
    for round in 0..<100 {
      for i in 0..<40 { Fixture.slot(m, [.int(Int64(round * 100 + i))]).storeBytes(of: 1, as: UInt64.self) }
      for i in 0..<40 {
        let key = Fixture.pack([.int(Int64(round * 100 + i))])
        key.withUnsafeBytes { k in _ = m.remove(key: k.baseAddress!, hash: MapStorage.hash(k.baseAddress!, count: 8)) }
      }
    }
    #expect(m.count == 0)
    #expect(m.droppedInserts == 0)
  }

  @Test func collidingHashesStayDistinct() {
    let m = Fixture.map("@x", keys: [.int64], value: .int64)
    for i in 0..<100 {
      let key = Fixture.pack([.int(Int64(i))])
      key.withUnsafeBytes { k in
        m.lookup(key: k.baseAddress!, hash: 12345, insert: true)!.storeBytes(of: UInt64(i * 3), as: UInt64.self)
      }
    }
    for i in 0..<100 {
      let key = Fixture.pack([.int(Int64(i))])
      key.withUnsafeBytes { k in
        #expect(m.lookup(key: k.baseAddress!, hash: 12345, insert: false)?.load(as: UInt64.self) == UInt64(i * 3))
      }
    }
  }

  @Test func maxEntriesDropsAndCounts() {
    let m = Fixture.map("@x", keys: [.int64], value: .int64, maxEntries: 3)
    for i in 0..<5 {
      let key = Fixture.pack([.int(Int64(i))])
      key.withUnsafeBytes { k in _ = m.lookup(key: k.baseAddress!, hash: MapStorage.hash(k.baseAddress!, count: 8), insert: true) }
    }
    #expect(m.count == 3)
    #expect(m.droppedInserts == 2)
  }

  @Test func clearAndZero() {
    let m = Fixture.map("@x", keys: [.int64], value: .int64)
    for i in 0..<20 { Fixture.slot(m, [.int(Int64(i))]).storeBytes(of: 9, as: UInt64.self) }
    m.zero()
    #expect(m.count == 20)
    m.forEach { _, v in #expect(v.load(as: UInt64.self) == 0) }
    m.clear()
    #expect(m.count == 0)
    Fixture.slot(m, [.int(3)]).storeBytes(of: 1, as: UInt64.self)
    #expect(m.count == 1)
  }

  @Test func hashDependsOnEveryByte() {
    let a: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    var b = a
    b[10] = 12
    let ha = a.withUnsafeBytes { MapStorage.hash($0.baseAddress!, count: 11) }
    let hb = b.withUnsafeBytes { MapStorage.hash($0.baseAddress!, count: 11) }
    #expect(ha != hb)
  }

  @Test func aggregations() {
    let v = UnsafeMutableRawPointer.allocate(byteCount: 66 * 8, alignment: 8)
    defer { v.deallocate() }
    v.initializeMemory(as: UInt8.self, repeating: 0, count: 66 * 8)
    Aggregation.min(v, UInt64(bitPattern: -3))
    Aggregation.min(v, 5)
    #expect(Int64(bitPattern: v.load(as: UInt64.self)) == -3)
    #expect(Aggregation.histBucket(UInt64(bitPattern: -1)) == 0)
    #expect(Aggregation.histBucket(0) == 1)
    #expect(Aggregation.histBucket(1) == 2)
    #expect(Aggregation.histBucket(1023) == 11)
    #expect(Aggregation.histBucket(1 << 40) == 33)
    #expect(Aggregation.lhistBucket(UInt64(bitPattern: -5), min: 0, max: 100, step: 10) == 0)
    #expect(Aggregation.lhistBucket(55, min: 0, max: 100, step: 10) == 6)
    #expect(Aggregation.lhistBucket(100, min: 0, max: 100, step: 10) == 11)
  }
}

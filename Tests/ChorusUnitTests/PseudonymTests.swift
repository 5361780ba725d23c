import ChorusData
import ChorusModel
import Testing

/// SHA-256 and HMAC-SHA-256 against the published vectors, and pseudonymous ids at parse time.
@Suite struct PseudonymTests {
    static func hex(_ b: [UInt8]) -> String { b.hexString }

    @Test func sha256MatchesFIPSVectors() {
        #expect(Self.hex(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Self.hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func hmacMatchesRFC4231() {
        #expect(Self.hex(SHA256.hmac(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(Self.hex(SHA256.hmac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(Self.hex(SHA256.hmac(key: [UInt8](repeating: 0xaa, count: 131),
                                     Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func pseudonymsAreStableKeyedAndShaped() throws {
        let a = try #require(Pseudonymizer(secret: [UInt8](repeating: 7, count: 32)))
        let b = try #require(Pseudonymizer(secret: [UInt8](repeating: 8, count: 32)))
        #expect(Pseudonymizer(secret: [1, 2, 3]) == nil)
        let p = a.pseudonym("u0000042")
        #expect(p == a.pseudonym("u0000042") && p != a.pseudonym("u0000043") && p != b.pseudonym("u0000042"))
        #expect(p.hasPrefix("p-") && p.count == 34 && Pseudonymizer.isPseudonym(p))
        #expect(a.pseudonym(p) == p)  // already a pseudonym: kept, so a re-ingest of output is harmless
        #expect(a.fingerprint.count == 16 && a.fingerprint != b.fingerprint)
    }

    @Test func theParserReplacesEveryUserIdAndDropsTheName() throws {
        let ps = try #require(Pseudonymizer(secret: [UInt8](repeating: 9, count: 32)))
        func parse(_ kind: RecordKind, _ line: String) -> Record? {
            var parser = RecordParser(kind: kind, format: .jsonl)
            parser.pseudonymizer = ps
            if case let .record(r) = parser.parse(line) { return r }
            return nil
        }
        guard case let .user(u)? = parse(.users, #"{"user_id":"u1","channel":"x","name":"Ada Lovelace"}"#) else {
            Issue.record("user"); return
        }
        #expect(u.id == ps.pseudonym("u1") && u.name.isEmpty)
        guard case let .interaction(i)? = parse(.interactions,
            #"{"interaction_id":"u1-7","user_id":"u1","content_id":"c1","type":"view","channel":"x","ts":1741355904}"#) else {
            Issue.record("interaction"); return
        }
        #expect(i.userId == ps.pseudonym("u1") && i.contentId == "c1" && !i.id.contains("u1"))
        guard case let .follow(f)? = parse(.follows, #"{"follower_id":"u1","followee_id":"u2","channel":"x","ts":1741355904}"#) else {
            Issue.record("follow"); return
        }
        #expect(f.followerId == ps.pseudonym("u1") && f.followeeId == ps.pseudonym("u2"))
        guard case let .content(c)? = parse(.content, #"{"content_id":"c1","author_id":"u2","channel":"x","created_at":1741355904}"#) else {
            Issue.record("content"); return
        }
        #expect(c.id == "c1" && c.authorId == ps.pseudonym("u2"))
    }
}

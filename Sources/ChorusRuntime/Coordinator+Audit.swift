import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Synchronization

/// The audit log: every administrative and privacy action the coordinator is asked for, with the principal of the
/// key that asked, the time, the target and the result, refusals included. Kept in the coordinator's store under
/// `audit/` + time (ms, 8 bytes big-endian) + a sequence number (8 bytes), synced before the reply is sent.
enum AuditLogKeys {
    static let prefix = Array("audit/".utf8)
    static let sequence = Atomic<UInt64>(0)

    static func key(timeMs: Int64) -> [UInt8] {
        var k = prefix
        withUnsafeBytes(of: UInt64(max(0, timeMs)).bigEndian) { k.append(contentsOf: $0) }
        withUnsafeBytes(of: sequence.wrappingAdd(1, ordering: .relaxed).newValue.bigEndian) { k.append(contentsOf: $0) }
        return k
    }

    static func from(timeMs: Int64) -> [UInt8] {
        var k = prefix
        withUnsafeBytes(of: UInt64(max(0, timeMs)).bigEndian) { k.append(contentsOf: $0) }
        return k
    }
}

extension Coordinator {
    /// The action and target a request is audited under; nil for requests that are not administrative.
    static func auditAction(_ req: Chorus_V1_Request) -> (action: String, target: String)? {
        switch req.body {
        case let .nodeAdmin(a):
            let verb = switch a.action {
            case .drain: "drain"
            case .undrain: "undrain"
            case .remove: "remove"
            default: "admin"
            }
            return ("node " + verb, a.node)
        case .rebalance: return ("rebalance", "cluster")
        case let .keysReload(k) where !k.forwarded: return ("keys reload", "cluster")
        case let .submitJob(s): return ("job submit", s.kind)
        case let .jobCancel(j): return ("job cancel", j.id)
        case let .submitPipeline(p): return ("pipeline submit", p.name.isEmpty ? "\(p.steps.count) steps" : p.name)
        case let .modelPut(m): return ("model put", m.name.isEmpty ? "(the file's own name)" : m.name)
        case let .documentPut(d): return ("document put", "\(d.collection)/\(d.id)")
        case let .documentApprove(d): return ("approve", "\(d.collection)/\(d.id) v\(d.version)")
        case let .documentEvent(d): return ("document \(d.action)", "\(d.collection)/\(d.id) v\(d.version)")
        case .audit: return ("audit read", "audit log")
        default: return nil
        }
    }

    /// Appends the entry of an administrative request (`RequestServer.serve` calls it before replying). A
    /// failed append is logged: the action itself already happened.
    func audit(_ req: Chorus_V1_Request, _ principal: Principal?, _ body: ResponseBody?) async {
        guard let (action, target) = Self.auditAction(req) else { return }
        var e = Chorus_V1_AuditRecord()
        e.timeMs = nowMs()
        e.principal = principal?.name ?? ""
        e.role = principal?.role.rawValue ?? (server.secure ? "" : "plaintext")
        e.action = action
        e.target = String(target.prefix(200))
        switch body {
        case let .error(err)?:
            e.ok = false
            e.result = String(err.message.prefix(500))
        case let .job(j)?: e.ok = true; e.result = "job \(j.id)"
        case let .admin(a)?: e.ok = true; e.result = String(a.message.prefix(500))
        case let .pipeline(p)?: e.ok = true; e.result = "pipeline \(p.id)"
        case let .model(m)?: e.ok = true; e.result = "\(m.summary.name) v\(m.summary.version)"
        case let .document(d)?: e.ok = true; e.result = "v\(d.meta.version)"
        case let .audit(l)?: e.ok = true; e.result = "\(l.entries.count) entries"
        default: e.ok = true; e.result = "ok"
        }
        do {
            let bytes: [UInt8] = try e.serializedBytes()
            let key = AuditLogKeys.key(timeMs: e.timeMs)
            try await storeQueue.run { try self.store.put(key, bytes, sync: true) }
        } catch {
            logger.error("cannot append to the audit log", metadata: ["action": "\(action)", "error": "\(error)"])
        }
    }

    /// `chorus audit`: entries at or after `since_ms`, the newest `limit` of them, oldest first.
    func auditLog(_ q: Chorus_V1_AuditQuery) async throws -> Chorus_V1_AuditLog {
        let limit = Int(q.limit == 0 ? 1000 : q.limit)
        let from = AuditLogKeys.from(timeMs: q.sinceMs)
        let end = Store.prefixEnd(AuditLogKeys.prefix)
        return try await storeQueue.run { () throws -> Chorus_V1_AuditLog in
            var entries: [Chorus_V1_AuditRecord] = []
            try self.store.scan(from: from, to: end) { _, value in
                entries.append(try Chorus_V1_AuditRecord(serializedBytes: value))
                if entries.count > 2 * limit { entries.removeFirst(entries.count - limit) }
                return true
            }
            var log = Chorus_V1_AuditLog()
            log.entries = Array(entries.suffix(limit))
            return log
        }
    }
}

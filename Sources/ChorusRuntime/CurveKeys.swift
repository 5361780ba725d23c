import CZeroMQ
import ChorusModel
import Foundation
import Glibc

/// CurveZMQ key pairs and the certificates that hold them (docs/security.md).
///
/// Files use CZMQ's `zcert` format (ZPL), so the usual ZeroMQ tools read them: `NAME.key` holds the public key and
/// the metadata, `NAME.key_secret` (mode 0600) the public and the secret key.
///
/// ```
/// #   ****  Generated on 2026-12-07T23:00:00Z by chorus keys generate  ****
/// metadata
///     name = "ingest-1"
///     role = "ingest"
/// curve
///     public-key = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
/// ```
public enum CurveKeys {
    /// The principal roles of a Chorus cluster (docs/cli.md, `chorus keys`).
    public enum Role: String, CaseIterable, Sendable {
        /// worker-to-worker and worker-to-coordinator traffic
        case worker
        /// drain, remove, rebalance, keys
        case admin
        /// jobs, pipelines, campaigns, approvals
        case `operator`
        /// read profiles, results and reports; submit read-only jobs
        case analyst
        /// writes
        case ingest
    }

    public struct KeyPair: Sendable, Equatable {
        /// Z85, 40 characters.
        public let publicKey: String
        public let secretKey: String
    }

    /// Whether this libzmq was built with CURVE (libsodium).
    public static var available: Bool { zmq_has("curve") == 1 }

    /// A new key pair from libzmq (`zmq_curve_keypair`).
    public static func generate() throws -> KeyPair {
        guard available else {
            throw ChorusError(.unavailable, "this libzmq has no CURVE support", hint: "install the Debian libzmq5 built with libsodium")
        }
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else {
            throw ChorusError(.internal, "zmq_curve_keypair failed: \(String(cString: zmq_strerror(zmq_errno())))")
        }
        return KeyPair(publicKey: String(cString: pub), secretKey: String(cString: sec))
    }

    /// The public key of a Z85 secret key (nil when it is not one).
    public static func publicKey(ofSecret secret: String) -> String? {
        guard isZ85Key(secret) else { return nil }
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secret) == 0 else { return nil }
        return String(cString: pub)
    }

    /// A 40-character Z85 string that decodes to 32 bytes.
    public static func isZ85Key(_ s: String) -> Bool {
        guard s.utf8.count == 40 else { return false }
        var out = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&out, s) != nil
    }

    /// One certificate: a principal's name, role and keys (the secret only in the secret file).
    public struct Certificate: Sendable, Equatable {
        public var name: String
        public var role: Role
        public var publicKey: String
        public var secretKey: String?

        public init(name: String, role: Role, publicKey: String, secretKey: String? = nil) {
            self.name = name; self.role = role; self.publicKey = publicKey; self.secretKey = secretKey
        }

        /// The zcert text; with the secret key only when `secret`.
        public func text(secret: Bool, generatedAt: Date = Date()) -> String {
            let stamp = ISO8601DateFormatter().string(from: generatedAt)
            var t = "#   ****  Generated on \(stamp) by chorus keys generate  ****\n"
            if secret { t += "#   ZeroMQ CURVE **Secret** Certificate\n#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n" }
            t += "\nmetadata\n    name = \"\(name)\"\n    role = \"\(role.rawValue)\"\ncurve\n    public-key = \"\(publicKey)\"\n"
            if secret, let secretKey { t += "    secret-key = \"\(secretKey)\"\n" }
            return t
        }

        /// Parses a zcert file's text (the subset Chorus writes: `metadata` and `curve` sections of `key = "value"`).
        public static func parse(_ text: String, source: String) throws -> Certificate {
            var section = ""
            var values: [String: String] = [:]
            for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.hasSuffix("\r") ? raw.dropLast() : raw[...]
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                if !line.hasPrefix(" ") && !line.hasPrefix("\t") {
                    section = trimmed
                    continue
                }
                guard let eq = trimmed.firstIndex(of: "=") else {
                    throw ChorusError(.invalidInput, "\(source):\(n + 1): expected `key = \"value\"`")
                }
                let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces)
                var value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                values[section + "." + key] = value
            }
            guard let pub = values["curve.public-key"], isZ85Key(pub) else {
                throw ChorusError(.invalidInput, "\(source): no valid curve public-key (40 Z85 characters)")
            }
            let roleText = values["metadata.role"] ?? ""
            guard let role = Role(rawValue: roleText) else {
                throw ChorusError(.invalidInput, "\(source): role '\(roleText)' is not one of "
                                  + Role.allCases.map(\.rawValue).joined(separator: ", "))
            }
            let name = values["metadata.name"] ?? ((source as NSString).lastPathComponent as NSString).deletingPathExtension
            var secret: String?
            if let s = values["curve.secret-key"] {
                guard CurveKeys.publicKey(ofSecret: s) == pub else {
                    throw ChorusError(.invalidInput, "\(source): the secret-key does not belong to the public-key")
                }
                secret = s
            }
            return Certificate(name: name, role: role, publicKey: pub, secretKey: secret)
        }
    }

    /// Writes `DIR/NAME.key` (0644) and `DIR/NAME.key_secret` (0600, created with that mode, never wider).
    /// Refuses to overwrite either file.
    /// `file` names the files when it is not the principal's name: a second key of the same principal during a
    /// rotation (`ana-2027.key` with `name = "ana"`).
    public static func write(_ cert: Certificate, to dir: String, file: String? = nil) throws -> (publicFile: String, secretFile: String) {
        for n in [cert.name, file ?? cert.name] {
            guard !n.isEmpty, n.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !n.hasPrefix(".") else {
                throw ChorusError(.usage, "a key name or file name is letters, digits, '-', '_' and '.', not starting with '.'")
            }
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pubPath = (dir as NSString).appendingPathComponent((file ?? cert.name) + ".key")
        let secPath = pubPath + "_secret"
        for p in [pubPath, secPath] where FileManager.default.fileExists(atPath: p) {
            throw ChorusError(.conflict, "\(p) exists already",
                              hint: "choose another --name, or --file for a second key of the same principal")
        }
        try DurableFile.write(Array(cert.text(secret: true).utf8), to: secPath, mode: 0o600, exclusive: true)
        try DurableFile.write(Array(cert.text(secret: false).utf8), to: pubPath, mode: 0o644, exclusive: true)
        return (pubPath, secPath)
    }

    /// A new cluster's keys in `dir`: `coordinator` and `worker` (role worker) and `admin`. Keys that exist are kept.
    public static func initCluster(dir: String) throws -> (created: [String], kept: [String]) {
        var created: [String] = [], kept: [String] = []
        for (name, role) in [("coordinator", Role.worker), ("worker", .worker), ("admin", .admin)] {
            let path = (dir as NSString).appendingPathComponent(name + ".key_secret")
            if FileManager.default.fileExists(atPath: path) {
                kept.append(name)
                continue
            }
            let pair = try generate()
            _ = try write(Certificate(name: name, role: role, publicKey: pair.publicKey, secretKey: pair.secretKey), to: dir)
            created.append(name)
        }
        return (created, kept)
    }

    /// The public keys a server lets in, with their principal's name and role: a certificate file, or a directory
    /// of them (`*.key`; secret files are skipped). A key listed twice with different roles is an error; a name may
    /// have several keys (a rotation in progress).
    public struct AllowList: Sendable {
        public var byKey: [String: (name: String, role: Role)] = [:]

        public init() {}

        public static func load(_ path: String) throws -> AllowList {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw ChorusError(.notFound, "allow-list not found: \(path)", hint: "generate keys with `chorus keys generate`")
            }
            let files: [String]
            if isDir.boolValue {
                files = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                    .filter { $0.hasSuffix(".key") && !$0.hasPrefix(".") }
                    .map { (path as NSString).appendingPathComponent($0) }
            } else {
                files = [path]
            }
            var list = AllowList()
            for f in files {
                guard let text = try? String(contentsOfFile: f, encoding: .utf8) else {
                    throw ChorusError(.storage, "cannot read \(f)")
                }
                let c = try Certificate.parse(text, source: f)
                if let old = list.byKey[c.publicKey], old.role != c.role {
                    throw ChorusError(.invalidInput, "\(f): public key of \(c.name) is listed as \(old.role.rawValue) too (for \(old.name))")
                }
                list.byKey[c.publicKey] = (c.name, c.role)
            }
            return list
        }
    }
}

/// The one error shape of Chorus. `message` says what went wrong, `hint` what to do next.
public struct ChorusError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable error codes. Each maps to a CLI exit code (see docs/operations.md).
    public enum Code: String, Sendable, Equatable {
        /// Bad flags, arguments or request shape: fix the invocation.
        case usage
        /// A peer (coordinator or worker) could not be reached in time.
        case unreachable
        /// The named job, user or node does not exist.
        case notFound
        /// The cluster cannot serve this yet (no workers, partition without owner); retry later.
        case unavailable
        /// Input data was malformed (reported per record, never silently dropped).
        case invalidInput
        /// A partition is owned elsewhere: refresh the partition map and retry.
        case wrongOwner
        /// Refused by fencing: the receiver's lease expired, or the sender acted on a stale partition map.
        /// Refresh the map and retry.
        case fenced
        /// Storage or I/O failure on this machine.
        case storage
        /// A job failed or was cancelled.
        case jobFailed
        /// The request does not apply to the target's current state: nothing was done (e.g. cancelling a job that
        /// already ended).
        case conflict
        /// The sender's key is not allowed this request (its role), or was not let in at all.
        case permissionDenied
        /// A bug: please report it with the log.
        case `internal`
    }

    public var code: Code
    public var message: String
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String {
        if let hint { return "\(message) (\(hint))" }
        return message
    }

    /// Process exit code for the CLI: 0 ok, 1 job failed, 2 internal, 3 conflict (nothing to do), 64 usage,
    /// 65 invalid input, 66 not found, 69 unreachable/unavailable, 74 storage, 77 permission denied.
    public var exitCode: Int32 {
        switch code {
        case .usage: return 64
        case .invalidInput: return 65
        case .notFound: return 66
        case .unreachable, .unavailable, .wrongOwner, .fenced: return 69
        case .storage: return 74
        case .permissionDenied: return 77
        case .jobFailed: return 1
        case .internal: return 2
        case .conflict: return 3
        }
    }
}

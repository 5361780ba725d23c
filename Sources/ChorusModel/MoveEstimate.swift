/// How far a partition move is, and when it should end, from what it copied so far.
///
/// `total` is the partition's size at the source when the copy started (0 when it was not counted). Writes that
/// arrive during the move can push `copied` past it, so the fraction stays below 1 until the move is done. The
/// ETA assumes the rest goes at the average rate so far (moves are throttled, so the rate is steady).
public struct MoveEstimate: Sendable, Equatable {
    /// 0...0.999, or nil when the total is unknown.
    public var fraction: Double?
    /// Units (bytes or keys) per second so far; 0 before the first chunk.
    public var rate: Double
    /// Seconds left, or nil when the total or the rate is unknown.
    public var etaSeconds: Double?

    public init(copied: UInt64, total: UInt64, elapsedSeconds: Double) {
        rate = elapsedSeconds > 0 ? Double(copied) / elapsedSeconds : 0
        guard total > 0 else { fraction = nil; etaSeconds = nil; return }
        fraction = min(Double(copied) / Double(total), 0.999)
        let left = copied >= total ? 0 : Double(total - copied)
        etaSeconds = rate > 0 ? left / rate : nil
    }
}

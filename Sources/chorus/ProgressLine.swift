import Foundation
import Synchronization

/// The one live status line of a command on stderr (ingest progress, `job watch`, `job submit --wait`).
///
/// On a terminal the line is rewritten in place: carriage return, then erase the whole line (`ESC [2K`), then
/// the new text, so a shorter line never leaves the tail of a longer one behind. `finish()` erases it, so the
/// command's final output takes its place instead of repeating it.
///
/// Anywhere else (a pipe, a log file, CI) there is no `\r` and no escape code: each distinct line is printed once,
/// on a line of its own, and `finish()` prints nothing.
final class ProgressLine: Sendable {
    let terminal: Bool
    private struct State { var last = ""; var live = false; var finished = false }
    private let state = Mutex(State())
    private let write: @Sendable (String) -> Void

    init(terminal: Bool = isatty(2) != 0,
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.terminal = terminal
        self.write = write
    }

    static let eraseLine = "\r\u{1B}[2K"

    /// Shows `line`. Off a terminal, a line equal to the last one is not printed again. After `finish()` it does
    /// nothing: a reporter on another thread (ingest's) may still deliver one last update after the result is out.
    func update(_ line: String) {
        let out: String? = state.withLock { s in
            if s.finished { return nil }
            if terminal {
                s.live = true
                s.last = line
                return Self.eraseLine + Self.fit(line, width: Self.terminalWidth())
            }
            guard line != s.last else { return nil }
            s.last = line
            return line + "\n"
        }
        if let out { write(out) }
    }

    /// A line longer than the terminal would wrap, and `\r` + erase reaches back only to the start of its last
    /// row: the rows above would stay as junk. So a live line is cut to the width, with "…".
    static func fit(_ line: String, width: Int) -> String {
        line.count < width ? line : String(line.prefix(max(1, width - 2))) + "…"
    }

    /// The width of the terminal on stderr (it can change between updates), else $COLUMNS, else 80.
    static func terminalWidth() -> Int {
        var w = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 { return Int(w.ws_col) }
        return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
    }

    /// Erases the live line so that a message can be printed on its own line; the next `update` draws it again.
    func clear() {
        let erase = state.withLock { s in
            defer { s.live = false }
            return terminal && s.live
        }
        if erase { write(Self.eraseLine) }
    }

    /// Ends the live line: erased on a terminal (the caller prints the outcome), nothing otherwise.
    func finish() {
        let erase = state.withLock { s in
            defer { s.live = false; s.finished = true }
            return terminal && s.live
        }
        if erase { write(Self.eraseLine) }
    }
}

/// "12 s", "3 min 05 s", "1 h 02 min".
func durationText(_ seconds: Double) -> String {
    let s = max(0, Int(seconds.rounded()))
    if s < 60 { return "\(s) s" }
    if s < 3600 { return String(format: "%d min %02d s", s / 60, s % 60) }
    return String(format: "%d h %02d min", s / 3600, (s % 3600) / 60)
}

/// Elapsed time and, once there is enough progress to extrapolate from, the time left: "elapsed 12 s, ETA 30 s".
func elapsedAndETA(elapsed: Double, fraction: Double) -> String {
    var s = "elapsed \(durationText(elapsed))"
    if fraction >= 0.01, fraction < 1, elapsed >= 1 {
        s += ", ETA \(durationText(elapsed * (1 - fraction) / fraction))"
    }
    return s
}

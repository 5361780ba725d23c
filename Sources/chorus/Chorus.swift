import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation
import Logging

@main
struct Chorus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Chorus: a distributed audience-analytics cluster for social-media marketing.",
        discussion: reflow("""
        Start a cluster with `chorus coordinator` and `chorus worker`, or try everything at once with
        `chorus local`. Client commands talk to the coordinator given by --coordinator (or the
        CHORUS_COORDINATOR environment variable; default tcp://127.0.0.1:7100) and print JSON with --json (-o json; -o yaml for YAML).

        Exit codes: 0 ok, 1 job failed or cancelled, 2 internal error, 3 nothing done (e.g. cancelling a job that
        already ended), 64 usage, 65 invalid input, 66 not found, 69 coordinator/worker unreachable or unavailable,
        74 storage error, 77 permission denied (the key is not let in, or its role may not do that), 130 interrupted.

        Security: every connection is CurveZMQ. Client commands take --keys DIR (or CHORUS_KEYS, or the config
        file's keys) and --key-name (or CHORUS_KEY_NAME); `chorus keys init` makes a set. --insecure turns it off.

        Environment: CHORUS_COORDINATOR (the default --coordinator), CHORUS_OUTPUT (the default -o),
        CHORUS_CONFIG (the config file, default ~/.config/chorus/config.toml: coordinator and output; a flag beats
        the environment, which beats the file), CHORUS_LOG_LEVEL (servers' log level), CHORUS_MODELS (a directory
        holding sentiment-default.chsm). Shell completion: `chorus --generate-completion-script bash|zsh|fish`.
        Version: `chorus version`. Details: docs/cli.md.
        """),
        version: VersionInfo.text,
        subcommands: [Local.self, CoordinatorCommand.self, WorkerCommand.self, Generate.self, Ingest.self,
                      Job.self, Pipeline.self, Profile.self, Recommend.self, Similar.self, ModelCommand.self, Sentiment.self, Alerts.self,
                      Segments.self,
                      Node.self, Cluster.self, Keys.self, Audit.self, Privacy.self, BenchStore.self, BenchKernels.self, BenchSentiment.self, BenchFuzz.self,
                      Debug.self, Propensity.self, Influencers.self, ForecastCommand.self, BestTimesCommand.self, Insights.self,
                      Campaign.self, Version.self]
    )

    /// `chorus job submit KIND --help` shows that kind's parameters (generated from its declarations); every other
    /// command line goes to argument-parser as usual.
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        if let help = Job.Submit.kindHelp(args) {
            print(help)
            return
        }
        do {
            var command = try parseAsRoot(args)
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Help discussions are hard-wrapped in the source, and argument-parser wraps every line again at the terminal's
/// width, so at 80 columns each long line was followed by a short one. `reflow` joins the lines of each paragraph
/// into one, so the text is wrapped once, at whatever width the help is shown. Blank lines, indented lines
/// (examples, lists) and lines that start with "Example" keep their breaks.
func reflow(_ text: String) -> String {
    var out: [String] = []
    var joinable = false
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        let own = line.isEmpty || line.first == " " || line.hasPrefix("Example")
        if !own, joinable, let last = out.popLast() {
            out.append(last + " " + line)
        } else {
            out.append(line)
        }
        joinable = !line.isEmpty && line.first != " " && !line.hasPrefix("Example")
    }
    return out.joined(separator: "\n")
}

/// Options every client command takes.
struct ClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Coordinator endpoint. Unset: $CHORUS_COORDINATOR, else the config file's coordinator.",
                               valueName: "ADDR"))
    var coordinator: String = ProcessInfo.processInfo.environment["CHORUS_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
        ?? ChorusConfig.loaded.coordinator ?? "tcp://127.0.0.1:7100"

    @Flag(name: .customLong("json"), help: "Print machine-readable JSON (keys documented in docs/cli.md); the same as -o json.")
    var jsonFlag = false

    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("Output format: table, json or yaml. Unset: $CHORUS_OUTPUT, else the config file's output, else table.",
                               valueName: "FORMAT"))
    var output: OutputFormat?

    @Option(help: ArgumentHelp("Seconds the command may wait for the cluster; it fails with exit 69 within them.",
                               valueName: "SECONDS"))
    var timeout: Double = 3

    @OptionGroup var security: SecurityOptions

    /// The output format in effect: flag, then environment, then config file, then table.
    var format: OutputFormat {
        if jsonFlag { return .json }
        if let output { return output }
        if let env = ProcessInfo.processInfo.environment["CHORUS_OUTPUT"], let f = OutputFormat(rawValue: env) { return f }
        return ChorusConfig.loaded.output ?? .table
    }

    /// Machine-readable output (JSON or YAML: both go through `printJSON`).
    var json: Bool { format != .table }

    func validate() throws {
        guard timeout > 0, timeout <= 86400 else { throw ValidationError("--timeout must be between 0 and 86400 seconds") }
        if jsonFlag, let output, output != .json {
            throw ValidationError("--json and -o \(output.rawValue) disagree: give one of them")
        }
        if let env = ProcessInfo.processInfo.environment["CHORUS_OUTPUT"], !env.isEmpty, OutputFormat(rawValue: env) == nil {
            throw ValidationError("CHORUS_OUTPUT=\(env): expected table, json or yaml")
        }
        OutputStyle.yaml = format == .yaml
    }

    func client() throws -> ChorusClient {
        // Range-checked before the conversion: Int(1e300 * 1000) would trap.
        guard timeout.isFinite, timeout > 0, timeout <= 86_400 else {
            throw ChorusError(.usage, "--timeout must be a number of seconds in (0, 86400], got \(timeout)")
        }
        return try ChorusClient(coordinator: coordinator, timeout: .milliseconds(Int(timeout * 1000)),
                                security: security.resolve(server: nil))
    }
}

func setupLogging(level: Logger.Level) {
    let env = ProcessInfo.processInfo.environment["CHORUS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = env ?? level
        return h
    }
}

/// Runs a command body, turning ChorusErrors into a clear message and a stable exit code.
func guarded(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as ChorusError {
        FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
        if let hint = e.hint { FileHandle.standardError.write(Data("hint: \(hint)\n".utf8)) }
        throw ExitCode(e.exitCode)
    } catch let e as ExitCode {
        throw e
    } catch is CancellationError {
        throw ExitCode(130)
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

/// Prints a JSON object the way the command line asked: pretty JSON, one line of JSON (`--watch`), or YAML
/// (`-o yaml`).
func printJSON(_ object: Any) {
    if OutputStyle.yaml {
        print(YAMLWriter.render(object))
        return
    }
    let options: JSONSerialization.WritingOptions = OutputStyle.compact
        ? [.sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    if let data = try? JSONSerialization.data(withJSONObject: object, options: options) {
        print(String(decoding: data, as: UTF8.self))
    }
}

func encodeJSON<T: Encodable>(_ v: T) -> Any {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    guard let data = try? enc.encode(v), let obj = try? JSONSerialization.jsonObject(with: data) else { return [:] }
    return obj
}

/// Waits for SIGINT/SIGTERM.
func waitForTermination() async {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let (stream, cont) = AsyncStream.makeStream(of: Void.self)
    let sources = SignalSources([SIGINT, SIGTERM]) { cont.yield() }
    for await _ in stream { break }
    sources.cancel()
}

/// SAFETY: the dispatch sources are created, resumed and cancelled on one task; handlers only yield to a stream.
final class SignalSources: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    init(_ signals: [Int32], handler: @escaping @Sendable () -> Void) {
        sources = signals.map { sig in
            let s = DispatchSource.makeSignalSource(signal: sig)
            s.setEventHandler(handler: handler)
            s.resume()
            return s
        }
    }
    func cancel() { sources.forEach { $0.cancel() } }
}

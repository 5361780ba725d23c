import ArgumentParser
import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusTransport
import Foundation
import Logging

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: membership, partition map, job history and job engine.",
        discussion: reflow("""
        State is kept in RocksDB under --data, so a restart keeps the map, the members and the job history;
        jobs that were running resume from their first stage. Every partition is kept on R workers (--replication);
        dead workers are replaced and joining workers get their share through throttled background moves.
        Example: chorus coordinator --bind tcp://127.0.0.1:7100 --data /var/lib/chorus/coord
        """))

    @Option(help: ArgumentHelp("ZeroMQ endpoint to listen on.", valueName: "ADDR"))
    var bind = "tcp://127.0.0.1:7100"

    @Option(help: ArgumentHelp("Data directory.", valueName: "DIR"))
    var data: String

    @Option(help: "Partition count, fixed when the cluster is created (default 64).")
    var partitions: UInt32?

    @Option(help: "Replication factor R (copies of every partition on distinct workers), fixed when the cluster is created (default 2).")
    var replication: UInt32?

    @Option(help: "Throttle of each partition move, in MiB/s (0 = unlimited).")
    var moveRateMib: Double = 32

    func validate() throws {
        // Checked before the conversion to bytes/s: UInt64(1e300) would trap.
        guard moveRateMib.isFinite, moveRateMib >= 0, moveRateMib <= 1_000_000 else {
            throw ValidationError("--move-rate-mib must be 0...1000000 (0 = unthrottled)")
        }
    }

    @Option(help: "Partition moves in flight at once in the whole cluster.")
    var maxMoves: Int = 4

    @Flag(help: "Refuse an approval of a document version (a campaign plan) by the person who wrote it.")
    var blockSelfApproval = false

    @Option(help: httpHelp)
    var http: String?

    @Option(help: metricsHelp)
    var metrics: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("""
        Store pseudonymous user ids, made with the secret of this fingerprint (`chorus privacy secret`); fixed when         the cluster is created. Every ingest must then hold the secret.
        """, valueName: "FINGERPRINT"))
    var pseudonymousIds: String?

    @OptionGroup var security: SecurityOptions

    func run() async throws {
        setupLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        signal(SIGHUP, SIG_IGN)  // until the reload handler is in place: a HUP during start must not kill it
        try await guarded {
            var o = CoordinatorOptions(bind: bind, dataDir: data, partitions: partitions, replication: replication)
            if let fp = pseudonymousIds {
                guard fp.utf8.count == 16, fp.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                    throw ChorusError(.usage, "--pseudonymous-ids takes the 16 hex digits `chorus privacy secret` printed")
                }
                o.pseudonymFingerprint = fp
            }
            o.security = try security.resolve(server: "coordinator")
            o.jobs = StandardJobs.registry
            o.moves.rateBytesPerSecond = UInt64(max(0, moveRateMib) * 1_048_576)
            o.moves.maxMoves = max(1, maxMoves)
            o.blockSelfApproval = blockSelfApproval
            let c = try Coordinator(options: o, logger: Logger(label: "chorus.coordinator"))
            print("coordinator listening on \(c.endpoint) \(securityNote(o.security))")
            let hup = reloadOnSIGHUP { c.reloadKeysOnSignal() }
            defer { hup.cancel() }
            let endpoint = c.endpoint
            let web = try startHTTP([http, metrics], metrics: { await c.metricsExposition() },
                                    statusPage: { await c.statusPageJSON() }) {
                (true, "serving at \(endpoint)")
            }
            fflush(nil)
            let task = Task { await c.run() }
            await waitForTermination()
            web.forEach { $0.close() }
            c.shutdown()
            task.cancel()
            await task.value
            c.closeStore()
        }
    }
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: a RocksDB shard of partitions that applies writes and runs tasks.",
        discussion: reflow("""
        The worker's id is minted once and kept in --data, so a restart rejoins as the same node.
        Example: chorus worker --coordinator tcp://127.0.0.1:7100 --bind tcp://127.0.0.1:7101 --data /var/lib/chorus/w1
        """))

    @Option(help: ArgumentHelp("Coordinator endpoint.", valueName: "ADDR"))
    var coordinator: String = ProcessInfo.processInfo.environment["CHORUS_COORDINATOR"] ?? "tcp://127.0.0.1:7100"

    @Option(help: ArgumentHelp("ZeroMQ endpoint to listen on (port * = any free port).", valueName: "ADDR"))
    var bind = "tcp://127.0.0.1:*"

    @Option(help: ArgumentHelp("Address other processes use to reach this worker (default: the bound one).",
                               valueName: "ADDR"))
    var advertise: String?

    @Option(help: ArgumentHelp("Data directory.", valueName: "DIR"))
    var data: String

    @Option(help: "Human-readable node name (default: derived from the node id).")
    var name: String?

    @Option(help: "Cores to use for tasks (default: all).")
    var cores: Int?

    @Option(help: ArgumentHelp("""
        Free space (MiB) to keep on the data directory's disk. Below it the worker warns and takes no new \
        partition copies; after a full disk made it read-only, it resumes writes once this much is free again.
        """, valueName: "MiB"))
    var minFreeMib: UInt64 = 512

    @Option(help: httpHelp)
    var http: String?

    @Option(help: metricsHelp)
    var metrics: String?

    @Flag(help: ArgumentHelp("After registering, clear a drain left on this node, so that it takes partitions again.",
                             discussion: reflow("""
        For deployments that drain a worker whenever it stops (the Kubernetes preStop hook and the systemd \
        ExecStop in deploy/). Tried once, right after the first registration: it also cancels an operator's drain \
        (finished or not) of a worker that restarts, never one started later. To retire a worker for good, drain \
        it and do not start it again.
        """)))
    var undrainOnStart = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @OptionGroup var security: SecurityOptions

    func run() async throws {
        setupLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        signal(SIGHUP, SIG_IGN)  // until the reload handler is in place: a HUP during start must not kill it
        try await guarded {
            var o = WorkerOptions(coordinator: coordinator, bind: bind, advertise: advertise, dataDir: data, name: name)
            o.security = try security.resolve(server: "worker")
            o.jobs = StandardJobs.registry
            if let cores { o.cores = cores }
            guard minFreeMib <= 1 << 30 else { throw ChorusError(.usage, "--min-free-mib \(minFreeMib) is too large") }
            o.minFreeBytes = minFreeMib << 20
            o.undrainOnStart = undrainOnStart
            let w = try Worker(options: o, logger: Logger(label: "chorus.worker"))
            print("worker \(w.name) (\(w.nodeId)) listening on \(w.endpoint) \(securityNote(o.security))")
            let hup = reloadOnSIGHUP { w.reloadKeysOnSignal() }
            defer { hup.cancel() }
            let coordinator = self.coordinator
            let web = try startHTTP([http, metrics], metrics: { w.metricsExposition() }) {
                w.isRegistered ? (true, "registered with the coordinator at \(coordinator) as \(w.name)")
                    : (false, "not registered with the coordinator at \(coordinator), or no heartbeat acknowledged in 3 s: see this worker's log")
            }
            fflush(nil)
            let task = Task { await w.run() }
            await waitForTermination()
            web.forEach { $0.close() }
            w.shutdown()
            task.cancel()
            await task.value
            w.closeStore()
        }
    }
}

let httpHelp = ArgumentHelp(
    "Serve read-only HTTP on HOST:PORT: /healthz, /readyz and /metrics (Prometheus).",
    discussion: reflow("""
    Off by default. A bare PORT binds loopback (127.0.0.1:PORT); 0.0.0.0:PORT is reachable from every \
    interface, as a Kubernetes probe or a Prometheus server elsewhere needs. /healthz answers 200 while the \
    process runs; /readyz 200 when it serves and 503 with the reason otherwise; /metrics the metrics in \
    Prometheus' text format (docs/operations.md, "Monitoring"). On the coordinator, / is a live status page \
    (nodes, partition map, moves, jobs, alerts) and /api/status its JSON.
    """), valueName: "ADDR")

let metricsHelp = ArgumentHelp(
    "Serve the same read-only endpoints as --http (for /metrics) on another HOST:PORT.",
    discussion: "For a separate scrape port; with only one of the two flags, either serves everything.",
    valueName: "ADDR")

/// Starts the HTTP servers of `--http` and `--metrics` (one per distinct address; HTTPServer in ChorusTransport,
/// each on a thread of its own).
func startHTTP(_ addresses: [String?], metrics: @escaping @Sendable () async -> [UInt8],
               statusPage: (@Sendable () async -> [UInt8])? = nil,
               ready: @escaping @Sendable () -> (Bool, String)) throws -> [HTTPServer] {
    var servers: [HTTPServer] = []
    var seen = Set<String>()
    for address in addresses.compactMap({ $0 }) where seen.insert(address).inserted {
        let server: HTTPServer
        do {
            // Liveness is answered on the server's own thread: it must not depend on the Swift pool.
            server = try HTTPServer(address: address, immediate: { request in
                request.path == "/healthz" ? HTTPResponse(status: 200, text: "ok\n") : nil
            }) { request in
                switch request.path {
                case "/readyz":
                    let (ok, why) = ready()
                    return HTTPResponse(status: ok ? 200 : 503, text: (ok ? "ready: " : "not ready: ") + why + "\n")
                case "/metrics":
                    return HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                        body: await metrics())
                case "/" where statusPage != nil:
                    return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8",
                                        body: Array(Coordinator.statusPageHTML.utf8))
                case "/api/status" where statusPage != nil:
                    return HTTPResponse(status: 200, contentType: "application/json", body: await statusPage!())
                case "/":
                    return HTTPResponse(status: 200, text: "chorus: /healthz (liveness), /readyz (readiness), /metrics (Prometheus)\n")
                default: return HTTPResponse(status: 404, text: "no \(request.path): try /healthz, /readyz or /metrics\n")
                }
            }
        } catch {
            servers.forEach { $0.close() }
            throw ChorusError(.usage, "cannot serve HTTP on \(address): \(error)",
                              hint: "pick a free port, e.g. --http 127.0.0.1:9100")
        }
        print("http endpoints on \(server.address) (" + (statusPage == nil ? "" : "/ status page, ")
              + "/healthz, /readyz, /metrics)")
        servers.append(server)
    }
    return servers
}

/// How a server's sockets are secured, for its start line: "(CurveZMQ, key worker-1, public key ...)".
func securityNote(_ s: NodeSecurity) -> String {
    guard let id = s.identity else {
        Logger(label: "chorus.security").warning("running with --insecure: plaintext, unauthenticated transport")
        return "(PLAINTEXT: --insecure)"
    }
    return "(CurveZMQ, key \(id.name), public key \(id.publicKey))"
}

/// Re-reads the allow-list on SIGHUP, without a restart.
func reloadOnSIGHUP(_ reload: @escaping @Sendable () -> Void) -> SignalSources {
    signal(SIGHUP, SIG_IGN)
    return SignalSources([SIGHUP], handler: reload)
}

import Foundation
import PackagePlugin

/// Generates BuildInfo.swift for the `chorus` target before every build: the git commit the binary is built
/// from, and whether the tree had uncommitted changes (scripts/build-info.sh). `chorus version` prints them.
/// A prebuild command, so it runs on every build (a commit changes no input SwiftPM tracks); the script rewrites
/// the file only when its content changes, so an unchanged commit recompiles nothing.
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let out = context.pluginWorkDirectoryURL.appending(path: "generated")
        var env: [String: String] = [:]
        // A build without .git (a container build) can pass the commit in.
        if let commit = ProcessInfo.processInfo.environment["CHORUS_GIT_COMMIT"] { env["CHORUS_GIT_COMMIT"] = commit }
        return [.prebuildCommand(displayName: "chorus build info (git commit)",
                                 executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: [root.appending(path: "scripts/build-info.sh").path, root.path,
                                             out.appending(path: "BuildInfo.swift").path],
                                 environment: env,
                                 outputFilesDirectory: out)]
    }
}

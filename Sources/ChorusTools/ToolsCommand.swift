import ArgumentParser

/// `chorus-tools`: benchmarks, crash tests and simulations, kept out of the production binary.
/// Scripts in Benchmarks/scripts and the integration tests run it; operators never need it.
@main
struct ToolsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-tools",
        abstract: "Benchmarks, crash tests and simulations for Chorus (not for production data).",
        subcommands: [WALToolsCommand.self, MeshBenchCommand.self, EmailBenchCommand.self, SimulateUsersCommand.self, FuzzCommand.self])
}

/// `chorus-tools wal ...`: write logs for crash tests and restart measurements.
struct WALToolsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Write logs for crash tests and restart-time measurements.",
        subcommands: [Torture.self, Generate.self])
}

import ArgumentParser

/// The one `chorus` executable; every tool is a subcommand so only one binary links the graph.
@main
struct ChorusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Chorus: a real-time chat engine.",
        subcommands: [WALCommand.self]
    )
}

import ChorusCLI
import ChorusCluster
import ArgumentParser
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusMesh
import ChorusReengagement
import ChorusWAL
import Foundation
import NIOSSL

/// `chorus serve`: one node. Options as PROTOCOL.md section 5, each also `CHORUS_<NAME>`.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run a Chorus node (HTTP API, WebSocket, web client, metrics on one port).")

    @Option(help: "HTTP and WebSocket listener.") var http = "127.0.0.1:8080"
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: the --http listener speaks HTTPS and WSS only.")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "Write-ahead log and snapshots.") var data = "./chorus-data"
    @Option(name: .customLong("node-id"), help: "This node's name in a cluster.") var nodeId = "node1"
    @Option(help: "Listener for peer nodes (cluster).") var mesh: String?
    @Option(help: "A peer node ID@HOST:PORT, repeatable (cluster).") var peer: [String] = []
    @Option(name: .customLong("mesh-cert"), help: "PEM certificate of this node for mutual TLS between nodes (its DNS name is --node-id).")
    var meshCert: String?
    @Option(name: .customLong("mesh-key"), help: "PEM private key of --mesh-cert.") var meshKey: String?
    @Option(name: .customLong("mesh-ca"), help: "PEM certificate of the cluster's CA: peers must present a certificate it signed.")
    var meshCA: String?
    /// For tests of the cap: inbound peer connections open at once (default 256).
    @Option(name: .customLong("mesh-max-inbound"), help: .hidden) var meshMaxInbound = 256
    @Flag(name: .customLong("mesh-insecure"), help: "Plain TCP between nodes, nobody verified: for tests on loopback only.")
    var meshInsecure = false
    @Option(help: "Durability of acks: always (group commit), batch[:MS], never.") var fsync = "always"
    @Option(name: .customLong("inactivity-after"), help: "Re-engagement email after this long without a login.")
    var inactivityAfter = "10d"
    @Option(help: "SMTP server HOST:PORT for re-engagement email.") var smtp: String?
    @Option(name: .customLong("mail-from"), help: "From address of re-engagement email.") var mailFrom: String?
    @Option(name: .customLong("public-url"), help: "Base URL used in links sent by email.") var publicURL: String?
    @Option(name: .customLong("session-rate-limit"), help: "Client frames per second per WebSocket session, RATE:BURST.")
    var sessionRateLimit = "100:300"
    @Option(name: .customLong("login-rate-limit"), help: "Login attempts per second per client address, RATE:BURST or off.")
    var loginRateLimit = "1:10"
    @Option(name: .customLong("user-send-rate-limit"), help: "Sends per second per user, all its sessions and HTTP together, RATE:BURST or off.")
    var userSendRateLimit = "20:100"
    @Option(name: .customLong("max-sessions-per-user"), help: "WebSocket sessions one user may hold; the next upgrade gets 429.")
    var maxSessionsPerUser = 20
    @Option(name: .customLong("trusted-proxy"), help: "A reverse proxy's network, CIDR, repeatable: its X-Forwarded-For names the client.")
    var trustedProxy: [String] = []
    @Option(name: .customLong("token-ttl"), help: "How long a token works after login; its open sessions are closed (4001) when it expires.")
    var tokenTTL = "30d"
    @Option(name: .customLong("register-rate-limit"), help: "Registrations per second per client address, RATE:BURST or off.")
    var registerRateLimit = "1:10"
    @Option(name: .customLong("max-pending-hashes"), help: "Password hashes waiting at once (registrations and logins); past it 503.")
    var maxPendingHashes = 64
    @Option(name: .customLong("max-connections"), help: "Open connections accepted; past it new ones get 503.")
    var maxConnections = 19_000
    @Option(name: .customLong("event-loops"), help: "Event-loop threads serving connections (default: one per core).")
    var eventLoops = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval announced in hello; a session silent for twice this is closed.")
    var heartbeatMs = 30_000
    @Option(name: .customLong("snapshot-every"), help: "Write an engine snapshot after this many new log records (0: never).")
    var snapshotEvery = 1_000_000
    /// For tests that fill a small disk: the log's segment size (default 64 MiB).
    @Option(name: .customLong("wal-segment-bytes"), help: .hidden) var walSegmentBytes: Int?
    @Option(name: .customLong("commit-interval-us"), help: "Group commits start at least this many microseconds apart (default: 1000 with --fsync always, else 0).")
    var commitIntervalUs: Int?
    @Flag(name: .customLong("insecure-fast-password-hash"), help: "A cheap password hash for tests and load runs only.")
    var insecureFastPasswordHash = false
    @Option(name: .customLong("email-templates"), help: "Directory with subject.txt, body.txt and body.html replacing the re-engagement email's wording.")
    var emailTemplates: String?
    @Option(name: .customLong("email-rate"), help: "Re-engagement emails handed to the mail server per second at most.")
    var emailRate = 50
    @Option(name: .customLong("smtp-connections"), help: "SMTP connections kept open and used at once (one email in flight on each).")
    var smtpConnections = 4
    @Option(name: .customLong("smtp-tls"), help: "STARTTLS: off, opportunistic (when offered) or required (the default with --smtp-user).")
    var smtpTLS: String?
    @Option(name: .customLong("smtp-user"), help: "SMTP AUTH user (password from CHORUS_SMTP_PASSWORD); sent only over TLS.")
    var smtpUser: String?
    @Option(name: .customLong("smtp-ca-file"), help: "PEM file of CA certificates to trust for the SMTP server (default: the system's).")
    var smtpCAFile: String?
    @Flag(help: "Start as a new node joining the running cluster of the --peer nodes (see docs/CLUSTER.md).")
    var join = false
    @Option(name: .customLong("admin-token"), help: "Bearer token for POST /v1/cluster/members (membership changes); unset disables it.")
    var adminToken: String?
    @Option(name: .customLong("header-timeout"), help: "A connection without a complete request head this long is closed.")
    var headerTimeout = "10s"
    @OptionGroup(title: "Replication") var replication: ReplicationOptions
    @Option(name: .customLong("idle-timeout"), help: "An idle keep-alive HTTP connection is closed after this long.")
    var idleTimeout = "60s"

    /// Every option checked before anything starts; a failure exits 2 with the reason.
    func settings() throws -> ServeSettings {
        func check<T>(_ option: String, _ parse: () throws -> T) throws -> T {
            do { return try parse() } catch { throw ValidationError("--\(option): \(error)") }
        }
        var s = ServeSettings()
        (s.host, s.port) = try check("http") { try ConfigParsing.hostPort(http) }
        switch (tlsCert, tlsKey) {
        case (nil, nil): break
        case (let cert?, let key?):
            do { s.clientTLS = try GatewayTLS.context(certificateFile: cert, keyFile: key) } catch { throw ValidationError("\(error)") }
        case (nil, _): throw ValidationError("--tls-key: needs --tls-cert")
        case (_, nil): throw ValidationError("--tls-cert: needs --tls-key")
        }
        s.headerTimeoutMs = try check("header-timeout") { try ConfigParsing.durationMs(headerTimeout) }
        s.idleTimeoutMs = try check("idle-timeout") { try ConfigParsing.durationMs(idleTimeout) }
        s.dataDirectory = data
        s.nodeId = try check("node-id") {
            guard ChatLimits().isValidID(nodeId) else { throw ConfigParsing.Failure("expected up to 64 printable ASCII characters") }
            return nodeId
        }
        if mesh == nil && !peer.isEmpty { throw ValidationError("--peer: needs --mesh (this node's listener for peers)") }
        // Peers dial this port, so it is a fixed one.
        if let mesh { s.mesh = try check("mesh") { try ConfigParsing.hostPort(mesh, allowEphemeral: false) } }
        s.meshTLS = try meshSecurity(nodeId: s.nodeId)
        s.meshInsecure = meshInsecure
        guard (1...100_000).contains(meshMaxInbound) else { throw ValidationError("--mesh-max-inbound: 1...100000") }
        s.meshMaxInbound = meshMaxInbound
        for p in peer {
            let (id, host, port) = try check("peer") { try ConfigParsing.peer(p) }
            guard ChatLimits().isValidID(id) else { throw ValidationError("--peer: '\(id)' is not a node id") }
            guard id != s.nodeId else { throw ValidationError("--peer: \(id) is this node (--node-id)") }
            guard s.peers[id] == nil else { throw ValidationError("--peer: \(id) is named twice") }
            s.peers[id] = (host, port)
        }
        s.syncMode = try check("fsync") { try SyncModeArgument.parse(fsync) }
        s.inactivityAfterMs = try check("inactivity-after") { try ConfigParsing.durationMs(inactivityAfter) }
        if let smtp { _ = try check("smtp") { try ConfigParsing.hostPort(smtp, allowEphemeral: false) } }
        if let mailFrom, !ChatLimits().isValidEmail(mailFrom) { throw ValidationError("--mail-from: not an email address") }
        if let publicURL, !(publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://")) {
            throw ValidationError("--public-url: expected an http:// or https:// URL")
        }
        s.smtp = smtp
        s.mailFrom = mailFrom
        s.publicURL = publicURL
        s.sessionRateLimit = try check("session-rate-limit") {
            guard let limit = try RateLimitSetting.parse(sessionRateLimit) else { throw ConfigParsing.Failure("cannot be off") }
            return limit
        }
        s.loginRateLimit = try check("login-rate-limit") { try RateLimitSetting.parse(loginRateLimit) }
        s.userSendRateLimit = try check("user-send-rate-limit") { try RateLimitSetting.parse(userSendRateLimit) }
        guard (1...10_000).contains(maxSessionsPerUser) else { throw ValidationError("--max-sessions-per-user: 1...10000") }
        s.maxSessionsPerUser = maxSessionsPerUser
        s.trustedProxies = try trustedProxy.map { text in
            guard let cidr = CIDR(text) else { throw ValidationError("--trusted-proxy: '\(text)' is not ADDRESS/BITS") }
            return cidr
        }
        s.tokenTTLMs = try check("token-ttl") {
            let ms = try ConfigParsing.durationMs(tokenTTL)
            guard ms >= 1_000 else { throw ConfigParsing.Failure("at least 1s") }
            return ms
        }
        s.registerRateLimit = try check("register-rate-limit") { try RateLimitSetting.parse(registerRateLimit) }
        guard (1...100_000).contains(maxPendingHashes) else { throw ValidationError("--max-pending-hashes: 1...100000") }
        s.maxPendingHashes = maxPendingHashes
        let ceiling = ServeSettings.connectionCeiling()
        guard (1...ceiling).contains(maxConnections) else {
            throw ValidationError("--max-connections: must be 1...\(ceiling) (the process may open \(ceiling + ServeSettings.reservedDescriptors) files)")
        }
        s.maxConnections = maxConnections
        guard (1...256).contains(eventLoops) else { throw ValidationError("--event-loops: must be 1...256") }
        s.eventLoops = eventLoops
        guard (100...3_600_000).contains(heartbeatMs) else { throw ValidationError("--heartbeat-ms: must be 100...3600000") }
        s.heartbeatMs = heartbeatMs
        guard snapshotEvery >= 0 else { throw ValidationError("--snapshot-every: must be 0 (never) or a record count") }
        s.snapshotEveryRecords = UInt64(snapshotEvery)
        s.walSegmentBytes = walSegmentBytes
        if let commitIntervalUs {
            guard (0...100_000).contains(commitIntervalUs) else { throw ValidationError("--commit-interval-us: must be 0...100000") }
            s.commitIntervalUs = commitIntervalUs
        }
        s.insecureFastPasswordHash = insecureFastPasswordHash
        if join && (mesh == nil || peer.isEmpty) { throw ValidationError("--join: needs --mesh and the --peer nodes of the cluster to join") }
        s.join = join
        if let adminToken {
            guard adminToken.utf8.count >= 16, adminToken.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ValidationError("--admin-token: at least 16 printable characters, no spaces")
            }
        }
        s.adminToken = adminToken
        guard (1...100_000).contains(emailRate) else { throw ValidationError("--email-rate: 1...100000 emails per second") }
        s.emailRate = emailRate
        guard (1...64).contains(smtpConnections) else { throw ValidationError("--smtp-connections: 1...64") }
        s.smtpConnections = smtpConnections
        // Credentials never cross a connection without TLS (PROTOCOL.md section 6).
        let user = smtpUser ?? ProcessInfo.processInfo.environment["CHORUS_SMTP_USERNAME"]
        let tlsMode = smtpTLS ?? (user == nil ? "opportunistic" : "required")
        guard ["off", "opportunistic", "required"].contains(tlsMode) else { throw ValidationError("--smtp-tls: off, opportunistic or required") }
        if user != nil && tlsMode == "off" { throw ValidationError("--smtp-user: credentials are sent only over TLS, not with --smtp-tls off") }
        s.smtpTLS = tlsMode
        s.smtpUser = user
        if let smtpCAFile, !FileManager.default.fileExists(atPath: smtpCAFile) { throw ValidationError("--smtp-ca-file: no such file") }
        s.smtpCAFile = smtpCAFile
        s.replication = try replication.settings(members: s.peers.count + 1, hasMesh: s.mesh != nil)
        if s.replication != nil, join {
            // etcd holds a replicated cluster's members: a node it does not list starts outside the ring.
            throw ValidationError("--join: with --etcd, start the node without it and add it with POST /v1/cluster/members")
        }
        if let dir = emailTemplates {
            s.emailTemplates = try check("email-templates") { try EmailTemplateFiles.load(dir) }
        }
        return s
    }

    func validate() throws { _ = try settings() }

    /// Mutual TLS between nodes, required with `--mesh` unless `--mesh-insecure` (PROTOCOL.md section 6).
    private func meshSecurity(nodeId: String) throws -> MeshTLS? {
        let files = [("--mesh-cert", meshCert), ("--mesh-key", meshKey), ("--mesh-ca", meshCA)]
        let given = files.filter { $0.1 != nil }
        guard mesh != nil else {
            if let first = given.first { throw ValidationError("\(first.0): needs --mesh (this node's listener for peers)") }
            if meshInsecure { throw ValidationError("--mesh-insecure: needs --mesh") }
            return nil
        }
        if meshInsecure {
            guard given.isEmpty else { throw ValidationError("--mesh-insecure: not with \(given.map(\.0).joined(separator: ", "))") }
            return nil
        }
        let missing = files.filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty, let meshCert, let meshKey, let meshCA else {
            throw ValidationError(
                "--mesh: needs \(missing.joined(separator: ", ")) (mutual TLS between nodes), or --mesh-insecure for tests on loopback")
        }
        let tls: MeshTLS
        do { tls = try MeshTLS(certificateFile: meshCert, keyFile: meshKey, caFile: meshCA) } catch { throw ValidationError("\(error)") }
        let names = MeshCertificates.dnsNames(pemFile: meshCert)
        guard names.contains(nodeId) else {
            throw ValidationError("--mesh-cert: the certificate names \(names.prefix(4).filter(MeshHello.isValidNodeId)), not this node (\(nodeId))")
        }
        return tls
    }

    func run() async throws {
        // A shell starts background jobs with SIGINT ignored; a node must still stop cleanly on it.
        signal(SIGINT, SIG_DFL)
        try await Node(settings: try settings()).run()
    }
}

/// Validated settings of one node.
struct ServeSettings {
    /// Descriptors kept back from the connection cap for segments, snapshots and the listener.
    static let reservedDescriptors = 500

    var host = "127.0.0.1"
    var port = 8080
    /// HTTPS and WSS only on the client listener.
    var clientTLS: NIOSSLContext?
    var dataDirectory = "./chorus-data"
    var nodeId = "node1"
    var syncMode = SyncMode.always
    var inactivityAfterMs: Int64 = 864_000_000
    var smtp: String?
    var mailFrom: String?
    var publicURL: String?
    var sessionRateLimit = RateLimitSetting(rate: 100, burst: 300)
    var loginRateLimit: RateLimitSetting? = RateLimitSetting(rate: 1, burst: 10)
    var registerRateLimit: RateLimitSetting? = RateLimitSetting(rate: 1, burst: 10)
    var userSendRateLimit: RateLimitSetting? = RateLimitSetting(rate: 20, burst: 100)
    var maxSessionsPerUser = 20
    var tokenTTLMs: Int64 = 30 * 86_400_000
    var trustedProxies: [CIDR] = []
    var maxPendingHashes = 64
    var maxConnections = 19_000
    var heartbeatMs = 30_000
    var headerTimeoutMs: Int64 = 10_000
    var idleTimeoutMs: Int64 = 60_000
    var eventLoops = ProcessInfo.processInfo.activeProcessorCount
    var insecureFastPasswordHash = false
    var snapshotEveryRecords: UInt64 = 1_000_000
    var walSegmentBytes: Int?
    /// Microseconds between group commits; nil: `defaultCommitIntervalUs` for the sync mode.
    var commitIntervalUs: Int?
    /// The peer listener; nil runs a single node.
    var mesh: (host: String, port: Int)?
    var peers: [String: (host: String, port: Int)] = [:]
    /// Mutual TLS between nodes; nil with no mesh or with `meshInsecure`.
    var meshTLS: MeshTLS?
    var meshInsecure = false
    /// With `--etcd`: replicated partitions and failover.
    var replication: ReplicationSettings?
    /// Inbound peer connections open at once (`--mesh-max-inbound`, hidden, for tests).
    var meshMaxInbound = 256
    /// A new node joining a running cluster (the peers are its members; this node is not yet).
    var join = false
    var adminToken: String?
    var emailRate = 50
    var smtpConnections = 4
    var emailTemplates: EmailTemplates?
    var smtpTLS = "opportunistic"
    /// SMTP AUTH user (`--smtp-user`, or `CHORUS_SMTP_USERNAME`); the password comes from the environment.
    var smtpUser: String?
    var smtpCAFile: String?

    /// The membership the flags describe: this node and its peers at epoch 1, or for `--join` the
    /// cluster being joined (epoch unknown, 0). A membership file from a committed change wins.
    var flagMembership: ClusterMembership {
        var members = peers.mapValues { "\($0.host):\($0.port)" }
        if !join { members[nodeId] = mesh.map { "\($0.host):\($0.port)" } ?? "" }
        return ClusterMembership(epoch: join ? 0 : 1, members: members)
    }

    /// The process's open-file limit less what the node needs for itself.
    static func connectionCeiling() -> Int {
        var rl = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        let limit = rl.rlim_cur > 1 << 30 ? 1 << 30 : Int(rl.rlim_cur)
        return max(1, limit - reservedDescriptors)
    }
}

extension ServeSettings {
    /// `always`: commits at most every millisecond. On a disk whose fsync returns in well under a
    /// millisecond, back-to-back commits of a few messages each cost a wake-up, a `pwrite`, an fsync and
    /// an ack hand-off apiece (docs/WAL.md, "Commit pacing"); a millisecond more on an ack is the price.
    /// `batch` and `never` ack before any fsync, so a wait would only add latency.
    static func defaultCommitIntervalUs(_ mode: SyncMode) -> Int {
        if case .always = mode { return 1_000 }
        return 0
    }
}

/// The first byte of every request and event: which message it is. Requests and events use
/// disjoint numbers, so a message of one sent as the other is refused as an unknown kind.
enum PeerKind: UInt8 {
    // Requests
    case http = 1
    case authenticate = 2
    case sessionOpen = 3
    case info = 7
    case send = 16
    case messages = 17
    case direct = 18
    case inboxAppend = 19
    case usersExist = 20
    case read = 21
    case typing = 22
    case presenceWatch = 24
    case inboxHigh = 26
    case receiptHigh = 27
    case membershipPrepare = 28
    case handover = 29
    case membershipStatus = 30
    case membershipCommit = 31
    case membershipAbort = 32
    case sharing = 33
    case sessionCount = 34
    case replicaFence = 35
    case replicaAppend = 36
    // Events
    case sessionFrame = 4
    case sessionPush = 5
    case sessionClose = 6
    case userPush = 23
    case presence = 25
}

/// The tag after an `ok` answer's first byte: which `PeerReply` follows.
enum PeerReplyTag: UInt8 {
    case done = 0, user, sent, messages, conversation, seqs, allExist, presence, http, info, phase, users, fenced, replica
}

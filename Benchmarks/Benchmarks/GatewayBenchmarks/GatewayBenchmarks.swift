import Benchmark
import ChorusCore
import ChorusTestKit
import ChorusGateway
import NIOCore

// The WebSocket framing on every client message: parsing masked client frames and writing server
// frames (WebSocketServerFraming), and the JSON on both sides of a send (ClientFrameCodec, ServerFrame). Run from Benchmarks/: `swift package benchmark --target GatewayBenchmarks`.
// Names have no spaces (package-benchmark 1.38 looks static thresholds up by the raw name).

/// `count` masked text frames carrying `payload`, back to back (as one read of a busy socket).
func maskedFrames(_ payload: [UInt8], count: Int) -> ByteBuffer {
    let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
    var out = ByteBuffer()
    for _ in 0..<count {
        out.writeInteger(UInt8(0x81))
        if payload.count < 126 {
            out.writeInteger(UInt8(0x80 | payload.count))
        } else {
            out.writeInteger(UInt8(0x80 | 126))
            out.writeInteger(UInt16(payload.count))
        }
        out.writeBytes(key)
        out.writeBytes(payload.enumerated().map { $1 ^ key[$0 & 3] })
    }
    return out
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 1,
        maxDuration: .seconds(5),
        maxIterations: 10_000,
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 5], absolute: [.p90: 20]),
            // CPU timings on this shared 2-core VM swing by a third between runs: these catch a
            // collapse; allocation counts are exact and catch the rest.
            .wallClock: .init(relative: [.p90: 60]),
            .throughput: .init(relative: [.p90: 60]),
        ]
    )
    let send = Array(
        #"{"type":"send","clientMsgId":"k2v7-1042-88","conversationId":"c_abcdefghijklm","body":"see you at the station at half past six, bring the tickets"}"#.utf8)

    // One send frame per read, as in the open loop (every client sends alone).
    let one = maskedFrames(send, count: 1)
    Benchmark("WebSocket.parseOneFramePerRead", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var parser = WebSocketServerFraming.Parser(maxMessageBytes: 65_536)
        for _ in benchmark.scaledIterations {
            parser.append(one)
            while let m = try parser.next() { blackHole(m) }
        }
    }

    // 1,000 frames in one read (a pipelining client), split where the reads end.
    let many = maskedFrames(send, count: 1_000)
    Benchmark("WebSocket.parse1000FramesInSplitReads") { benchmark in
        for _ in benchmark.scaledIterations {
            var parser = WebSocketServerFraming.Parser(maxMessageBytes: 65_536)
            var rest = many
            while let chunk = rest.readSlice(length: min(4_096, rest.readableBytes)), chunk.readableBytes > 0 {
                parser.append(chunk)
                while let m = try parser.next() { blackHole(m) }
            }
        }
    }

    let message = Array(repeating: UInt8(ascii: "m"), count: 240)
    let allocator = ByteBufferAllocator()
    Benchmark("WebSocket.writeServerFrame", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: message, allocator: allocator))
        }
    }

    // A client's send frame decoded (the per-message read path; one allocation: the body's String).
    let sendFrame = BenchmarkFixtures.sendFrame
    Benchmark("WebSocket.decodeSendFrame", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(ClientFrameCodec.decode(sendFrame)) }
    }

    // A delivered message as the session writes it: JSON straight into the frame's buffer, header in
    // place (one allocation: the buffer).
    let record = BenchmarkFixtures.messageRecord
    Benchmark("WebSocket.writeMessageFrameInPlace", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(WebSocketServerFraming.textFrame(capacity: ServerFrame.messageCapacity(record), allocator: allocator) {
                ServerFrame.message(record, inboxSeq: 88, into: &$0)
            })
        }
    }
}

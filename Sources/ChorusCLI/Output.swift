import Glibc

/// Unbuffered line output: each line is one write(2), so a SIGKILL never tears one.
public enum Output {
    public static func line(_ text: String, fd: Int32 = 1) {
        var s = text + "\n"
        s.withUTF8 { buf in
            var done = 0
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n <= 0 { if errno == EINTR { continue }; return }
                done += n
            }
        }
    }
}

public func fileExists(_ path: String, isDirectory: inout Bool) -> Bool {
    var st = stat()
    guard stat(path, &st) == 0 else { return false }
    isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
    return true
}

//! An HTTP proxy that records what reaches it and forwards nothing (live_hostile,
//! deliver_kube): the tests that no secret travels through a proxy in clear text.

/// A proxy that records the first line of every request it gets (`GET http://…` for plain
/// http, `CONNECT host:443` for a tunnel) and answers 502. Runs on threads of its own, so a test
/// can use it around the real binary.
pub struct RecordingProxy {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingProxy {
    pub fn start() -> RecordingProxy {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut line = String::new();
                let _ = std::io::BufReader::new(&stream).read_line(&mut line);
                log.lock().unwrap().push(line.trim_end().to_owned());
                let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
            }
        });
        RecordingProxy { url, seen }
    }

    /// The first line of every request so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

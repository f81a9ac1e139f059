//! A TCP proxy in front of the test Postgres server that a test can take
//! down and bring back: while it is down, connections to its port are
//! refused and the ones it carried are cut, as when the server stops; the
//! real server (shared by every test) is never touched.

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub struct PgProxy {
    port: u16,
    target: String,
    task: Option<JoinHandle<()>>,
}

impl PgProxy {
    /// Listening on a free loopback port, forwarding to the test server.
    pub async fn start() -> Self {
        let admin = url::Url::parse(&super::admin_url()).expect("the test server URL parses");
        let target = format!(
            "{}:{}",
            admin.host_str().unwrap_or("127.0.0.1"),
            admin.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Self {
            port,
            target,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    /// `db_url` (a database of the test server) reached through the proxy.
    pub fn url(&self, db_url: &str) -> String {
        let mut url = url::Url::parse(db_url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    /// Refuses connections from now on and cuts the open ones.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The listener and every connection task are dropped with it.
            let _ = task.await;
        }
    }

    /// Accepts connections again, on the same port.
    pub async fn resume(&mut self) {
        assert!(self.task.is_none(), "the proxy is already up");
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy's port is free again");
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropped (aborting every connection) when this task is aborted.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                // Reap the finished ones as we go.
                while connections.try_join_next().is_some() {}
            }
        }));
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

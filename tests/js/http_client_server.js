// statefun-c: Apache License 2.0.
//
// Independent peers for the HTTP client tests (tests/protocol/check_http_client.c),
// written with node's own http and net modules.
//
//   node http_client_server.js http  <port|unix-path> [keepAliveTimeoutMs]
//   node http_client_server.js raw   <port> <mode>
//   node http_client_server.js h2    <port> [goawayAfter]
//   node http_client_server.js https <port> <key.pem> <cert.pem>
//
// "http" is an HTTP/1.1-only server (node's http module: it answers the HTTP/2
// preface with an error, which is what the client's auto mode must detect):
//   POST /echo        200 with the request body (and its content-type)
//   GET  /hello       200 "hello"
//   GET  /stats       200 JSON {"connections": accepted sockets, "requests": n}
//   GET  /close       200 "bye" with "Connection: close"
//   GET  /half        200 with content-length 1000, 500 bytes, then the socket is destroyed
//   GET  /slow?ms=N   200 after N ms
//   GET  /big?n=N     200 with N bytes
//   anything else     404
//
// "raw" is a TCP server with one behaviour per mode:
//   silent   accepts and never answers (never reads either)
//   garbage  answers anything with bytes that are no HTTP at all
//   hangup   closes every connection as soon as it is accepted
//   eof      answers every request with an HTTP/1.1 200 body delimited by the close
//
// "h2" is node's HTTP/2 server over plaintext (prior knowledge):
//   POST /echo        200 with the request body
//   GET  /stats       200 JSON {"sessions": HTTP/2 connections seen}
//   any  /reset       the stream is reset with INTERNAL_ERROR
//   With goawayAfter = N, the first session sends GOAWAY once it has seen N
//   streams (last stream id = the Nth), and refuses the streams after it.
//
// "https" is the "http" server over TLS; node offers ALPN "http/1.1" only (and
// ends the handshake of a client that offers only "h2").
//
// All print one line on stdout once listening: "LISTENING <port or path>". Nothing
// else is printed on stdout (the test closes its end of the pipe after that line).
'use strict';

const http = require('http');
const http2 = require('http2');
const https = require('https');
const net = require('net');
const fs = require('fs');

const [kind, where, extra] = process.argv.slice(2);
const isUnix = !/^\d+$/.test(where);

function listen(server) {
    const onListening = () => {
        const addr = server.address();
        process.stdout.write(`LISTENING ${isUnix ? where : addr.port}\n`);
    };
    if (isUnix) {
        try { fs.unlinkSync(where); } catch (e) { /* not there */ }
        server.listen(where, onListening);
    } else {
        server.listen(Number(where), '127.0.0.1', onListening);
    }
}

function httpServer(tls) {
    let connections = 0;
    let requests = 0;
    const handler = (req, res) => {
        requests++;
        const url = new URL(req.url, 'http://x');
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const body = Buffer.concat(chunks);
            switch (url.pathname) {
            case '/echo':
                res.writeHead(200, {
                    'content-type': req.headers['content-type'] || 'application/octet-stream',
                    'x-method': req.method,
                    'x-test': req.headers['x-test'] || '',
                });
                res.end(body);
                break;
            case '/hello':
                res.writeHead(200, {'content-type': 'text/plain'});
                res.end('hello');
                break;
            case '/stats':
                res.writeHead(200, {'content-type': 'application/json'});
                res.end(JSON.stringify({connections, requests}));
                break;
            case '/close':
                res.writeHead(200, {'connection': 'close', 'content-length': '3'});
                res.end('bye');
                break;
            case '/half':
                res.writeHead(200, {'content-length': '1000'});
                res.write(Buffer.alloc(500, 'x'));
                setTimeout(() => req.socket.destroy(), 20);
                break;
            case '/slow':
                setTimeout(() => res.end('slow'), Number(url.searchParams.get('ms') || 0));
                break;
            case '/big':
                res.end(Buffer.alloc(Number(url.searchParams.get('n') || 0), 'b'));
                break;
            default:
                res.writeHead(404);
                res.end('not found');
            }
        });
    };
    const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    server.on(tls ? 'secureConnection' : 'connection', () => connections++);
    if (extra)
        server.keepAliveTimeout = Number(extra);
    listen(server);
}

function rawServer(mode) {
    const server = net.createServer((sock) => {
        sock.on('error', () => {});
        switch (mode) {
        case 'silent':
            sock.pause();
            break;
        case 'garbage':
            sock.once('data', () => sock.write(Buffer.from('\x7f\x01garbage, not HTTP at all\n')));
            break;
        case 'hangup':
            sock.destroy();
            break;
        case 'eof': {
            let got = '';
            sock.on('data', (d) => {
                got += d.toString('latin1');
                if (got.includes('\r\n\r\n')) {
                    sock.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end');
                    got = '';
                }
            });
            break;
        }
        default:
            sock.destroy();
        }
    });
    listen(server);
}

function h2Server(goawayAfter) {
    let sessions = 0;
    const server = http2.createServer();
    server.on('session', (session) => {
        session.sfIndex = sessions++;
        session.sfStreams = 0;
        session.sfLast = 0;
        session.on('error', () => {});
    });
    server.on('stream', (stream, headers) => {
        const session = stream.session;
        stream.on('error', () => {});
        session.sfStreams++;
        if (session.sfLast && stream.id > session.sfLast) {
            stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
            return;
        }
        if (goawayAfter && session.sfIndex === 0 && session.sfStreams === goawayAfter) {
            session.sfLast = stream.id;
            session.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
        }
        const chunks = [];
        stream.on('data', (c) => chunks.push(c));
        stream.on('end', () => {
            const path = headers[':path'];
            if (path === '/reset') {
                stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
            } else if (path === '/stats') {
                stream.respond({':status': 200, 'content-type': 'application/json'});
                stream.end(JSON.stringify({sessions}));
            } else {
                stream.respond({':status': 200, 'x-test': headers['x-test'] || ''});
                stream.end(Buffer.concat(chunks));
            }
        });
    });
    listen(server);
}

process.on('SIGTERM', () => process.exit(0));
if (kind === 'http')
    httpServer(null);
else if (kind === 'https')
    httpServer({key: fs.readFileSync(extra), cert: fs.readFileSync(process.argv[5])});
else if (kind === 'h2')
    h2Server(Number(extra || 0));
else
    rawServer(extra);

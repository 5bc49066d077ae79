// The HTTP stand-in of livetest.bats: a provider on 127.0.0.1 (a random
// port, printed as "READY PORT") that logs each request's path, and
// whether it carried the expected key, to the file argv[2].  It exits on
// its own after a minute, so a test that dies cannot leave it behind.
import http from 'node:http';
import fs from 'node:fs';

const log = process.argv[2];
const want = 'Bearer ' + fs.readFileSync(process.argv[3], 'utf8').trim();
const note = (s) => fs.appendFileSync(log, s + '\n');

const server = http.createServer((req, res) => {
	const auth = req.headers.authorization === want ? 'key' : 'nokey';
	note(`${req.method} ${req.url} ${auth}`);
	switch (req.url) {
	case '/ok':
		res.writeHead(auth === 'key' ? 200 : 401);
		res.end('{"ok":true}');
		break;
	case '/deny':
		// A provider that echoes what it was sent, key included.
		res.writeHead(401, {'content-type': 'text/plain'});
		res.end('bad credentials: ' + req.headers.authorization);
		break;
	case '/redirect':
		res.writeHead(302, {location: 'http://localhost:' +
		    server.address().port + '/second'});
		res.end();
		break;
	case '/second':
		res.writeHead(200);
		res.end();
		break;
	case '/hang':
		break;	// never answered
	default:
		res.writeHead(404);
		res.end();
	}
});
server.listen(0, '127.0.0.1', () => {
	console.log('READY ' + server.address().port);
});
setTimeout(() => process.exit(0), 60000);

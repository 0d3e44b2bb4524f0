// The baseline for grid calls across processes: plain @endo/captp over ws,
// JSON text frames, an echo object as the bootstrap. Prints its URL.
import '@endo/init';
import { WebSocketServer } from 'ws';
import { makeCapTP } from '@endo/captp';
import { Far } from '@endo/far';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
server.on('listening', () => console.log(JSON.stringify({ url: `ws://127.0.0.1:${server.address().port}` })));
server.on('connection', (socket) => {
  const { dispatch } = makeCapTP('server', (message) => socket.send(JSON.stringify(message)), Far('echo', { echo: (x) => x }));
  socket.on('message', (data) => dispatch(JSON.parse(String(data))));
});

// Benchmark backends (njs): a fixed tiny answer, one after 50 ms, and a stream whose first
// event leaves at once and the rest 20 ms later.
const TINY = '{"id":"b","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}';

function slow(r) {
    setTimeout(function () {
        r.headersOut['Content-Type'] = 'application/json';
        r.return(200, TINY);
    }, 50);
}

function stream(r) {
    r.status = 200;
    r.headersOut['Content-Type'] = 'text/event-stream';
    r.sendHeader();
    r.send('data: {"choices":[{"delta":{"content":"first"}}]}\n\n');
    setTimeout(function () {
        r.send('data: {"choices":[{"delta":{"content":"second"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\ndata: [DONE]\n\n');
        r.finish();
    }, 20);
}

export default {slow, stream};

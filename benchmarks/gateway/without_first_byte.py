"""For cpu_cost.py: the gateway's rendered Lua without what the monitoring added to the request
path (the stream flag in the route handler, the first byte's time in the body filter)."""

PATCHES = [
    ('''    if request.stream == true then
        ngx.var.teamllm_stream = "1"
    end
''', ""),
    ('''    if data ~= "" and ngx.var.teamllm_first_byte == "" then
        ngx.var.teamllm_first_byte = format("%.3f", ngx.now() - ngx.req.start_time())
    end
''', ""),
]

-- wrk script: PUT the same note with a fresh updatedAt each time (last write wins).
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"content":"benchmark write %d","updatedAt":"2030-01-01T00:%02d:%02d.%03dZ"}', n, math.floor(n / 60000) % 60, math.floor(n / 1000) % 60, n % 1000)
  return wrk.format(nil, nil, nil, body)
end

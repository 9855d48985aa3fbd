-- A tiny test runner for headless Neovim: the test body runs in a coroutine that yields
-- to the event loop while it waits (LSP messages, timers and typed keys need the loop),
-- checks are collected and written as JSON, and Neovim exits 0 only if all passed.
local H = {}

local uv = vim.uv
local results = { checks = {}, info = {}, notifications = {}, error = vim.NIL }
H.results = results
H.events = {} ---@type table<string, table[]> User autocmd pattern -> data of each

local co
local finished = false

local function resume()
  if finished or not co then
    return
  end
  local ok, err = coroutine.resume(co)
  if not ok then
    H.finish(debug.traceback(co, err))
  elseif coroutine.status(co) == "dead" then
    H.finish(nil)
  end
end

function H.check(name, ok, detail)
  results.checks[#results.checks + 1] = {
    name = name,
    ok = ok and true or false,
    detail = detail == nil and vim.NIL
      or (type(detail) == "string" and detail or vim.inspect(detail)),
  }
  return ok
end

function H.info(key, value)
  results.info[key] = value
end

--- Yields until `cond()` is true or `ms` pass; returns whether it became true.
function H.wait(cond, ms)
  local deadline = uv.now() + (ms or 5000)
  while true do
    local ok, value = pcall(cond)
    if ok and value then
      return true
    end
    if uv.now() > deadline then
      return false
    end
    vim.defer_fn(resume, 10)
    coroutine.yield()
  end
end

function H.sleep(ms)
  local deadline = uv.now() + ms
  H.wait(function() return uv.now() >= deadline end, ms + 1000)
end

--- Records every `User <pattern>` event's data.
function H.record(pattern)
  H.events[pattern] = {}
  vim.api.nvim_create_autocmd("User", {
    pattern = pattern,
    callback = function(ev)
      table.insert(H.events[pattern], ev.data or {})
    end,
  })
end

--- Waits for the next `User <pattern>` event after calling `fn`; returns its data or nil.
function H.next_event(pattern, fn, ms)
  local n = #H.events[pattern]
  fn()
  if H.wait(function() return #H.events[pattern] > n end, ms or 20000) then
    return H.events[pattern][#H.events[pattern]]
  end
  return nil
end

--- Keeps every vim.notify message (and still shows it in the log).
function H.capture_notifications()
  vim.notify = function(msg, level)
    table.insert(results.notifications,
      { msg = tostring(msg), level = level or vim.log.levels.INFO })
  end
end

function H.notified(pattern, since)
  for i = (since or 0) + 1, #results.notifications do
    if results.notifications[i].msg:find(pattern) then
      return results.notifications[i].msg
    end
  end
  return nil
end

--- Types keys as a user would (mappings apply), then lets the loop run until `cond`
--- (without one, for 50 ms).
function H.type(keys, cond, ms)
  vim.api.nvim_input(keys)
  if not cond then
    H.sleep(50)
    return true
  end
  return H.wait(cond, ms or 3000)
end

function H.mode()
  return vim.api.nvim_get_mode().mode
end

function H.to_normal()
  if H.mode() ~= "n" then
    H.type("<Esc>", function() return H.mode() == "n" end)
  end
end

--- Insert mode at the end of line `lnum` (1-based).
function H.insert_at_eol(lnum)
  H.to_normal()
  vim.api.nvim_win_set_cursor(0, { lnum, 0 })
  local len = #vim.api.nvim_buf_get_lines(0, lnum - 1, lnum, false)[1]
  return H.type("A", function()
    local c = vim.api.nvim_win_get_cursor(0)
    return H.mode() == "i" and c[1] == lnum and c[2] == len
  end)
end

--- `lines` with `text` inserted at (0-based row, byte col).
function H.insert_text(lines, row, col, text)
  local out = vim.list_slice(lines, 1, row)
  local line = lines[row + 1]
  local new = vim.split(line:sub(1, col) .. text .. line:sub(col + 1), "\n", { plain = true })
  vim.list_extend(out, new)
  vim.list_extend(out, lines, row + 2)
  return out
end

--- `lines` with LSP text edits applied, positions as bytes (utf-8), the last edit first.
function H.apply_edits(lines, edits)
  local text = table.concat(lines, "\n")
  local starts, at = {}, 1
  for i, line in ipairs(lines) do
    starts[i - 1] = at
    at = at + #line + 1
  end
  local sorted = vim.deepcopy(edits)
  table.sort(sorted, function(a, b)
    local sa, sb = a.range.start, b.range.start
    return sa.line > sb.line or (sa.line == sb.line and sa.character > sb.character)
  end)
  for _, e in ipairs(sorted) do
    local s = starts[e.range.start.line] + e.range.start.character
    local f = starts[e.range["end"].line] + e.range["end"].character
    text = text:sub(1, s - 1) .. e.newText .. text:sub(f)
  end
  return vim.split(text, "\n", { plain = true })
end

--- The ghost text of namespace `ns` as one string (virt_text, then "\n" + each virt_line).
function H.extmark_text(buf, ns)
  local marks = vim.api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })
  local parts = {}
  for _, m in ipairs(marks) do
    local d = m[4]
    for _, chunk in ipairs(d.virt_text or {}) do
      parts[#parts + 1] = chunk[1]
    end
    for _, vl in ipairs(d.virt_lines or {}) do
      parts[#parts + 1] = "\n"
      for _, chunk in ipairs(vl) do
        parts[#parts + 1] = chunk[1]
      end
    end
  end
  return table.concat(parts), marks
end

--- A plain-text picture of rows `first`..`last` (0-based) of `buf` as the window shows
--- them with the extmarks of `ns`: inline virtual text in its line, virtual lines below
--- (gutter "+"), and under a line, ^ marks virtual text and ~ marks highlighted text.
function H.screenshot(buf, ns, first, last, header)
  local lines = vim.api.nvim_buf_get_lines(buf, first, last + 1, false)
  local marks = vim.api.nvim_buf_get_extmarks(buf, ns, { first, 0 }, { last, -1 },
    { details = true })
  local by_row = {}
  for _, m in ipairs(marks) do
    by_row[m[2]] = by_row[m[2]] or {}
    table.insert(by_row[m[2]], m)
  end
  local out = { header, "" }
  local width = #tostring(last + 1)
  local function gutter(label, sep)
    return ("%" .. width .. "s %s "):format(label, sep)
  end
  local function chunks(list)
    local t = ""
    for _, chunk in ipairs(list or {}) do
      t = t .. chunk[1]
    end
    return t
  end
  for i, line in ipairs(lines) do
    local row = first + i - 1
    local row_marks = by_row[row] or {}
    -- Inline virtual text shifts what follows: insert from the rightmost mark leftwards.
    table.sort(row_marks, function(a, b) return a[3] > b[3] end)
    local shown, spans, extra, above = line, {}, {}, {}
    for _, m in ipairs(row_marks) do
      local col, d = m[3], m[4]
      local virt = chunks(d.virt_text)
      if virt ~= "" then
        shown = shown:sub(1, col) .. virt .. shown:sub(col + 1)
        for _, sp in ipairs(spans) do
          sp[1] = sp[1] + #virt -- spans found so far lie to the right
        end
        spans[#spans + 1] = { col, col + #virt, "^" }
      end
      if d.hl_group and d.end_row == row and d.end_col and d.end_col > col then
        spans[#spans + 1] = { col, d.end_col, "~" }
      end
      for _, vl in ipairs(d.virt_lines or {}) do
        table.insert(d.virt_lines_above and above or extra, chunks(vl))
      end
    end
    for _, l in ipairs(above) do
      out[#out + 1] = gutter("+", ":") .. l
    end
    out[#out + 1] = gutter(tostring(row + 1), "|") .. shown
    if #spans > 0 then
      local under = {}
      for _, sp in ipairs(spans) do
        local from = vim.fn.strdisplaywidth(shown:sub(1, sp[1]))
        local to = vim.fn.strdisplaywidth(shown:sub(1, sp[2]))
        for c = from + 1, to do
          under[c] = sp[3]
        end
      end
      local u = ""
      for c = 1, table.maxn(under) do
        u = u .. (under[c] or " ")
      end
      out[#out + 1] = gutter("", " ") .. u
    end
    for _, l in ipairs(extra) do
      out[#out + 1] = gutter("+", ":") .. l
    end
  end
  for i, l in ipairs(out) do
    out[i] = l:gsub("%s+$", "")
  end
  return table.concat(out, "\n") .. "\n"
end

function H.finish(err)
  if finished then
    return
  end
  finished = true
  if err then
    results.error = err
  end
  local all = err == nil and #results.checks > 0
  for _, c in ipairs(results.checks) do
    all = all and c.ok
  end
  results.passed = all
  local f = assert(io.open(H.results_path, "w"))
  f:write(vim.json.encode(results))
  f:close()
  vim.schedule(function()
    vim.cmd(all and "qall!" or "cquit 1")
  end)
end

--- Waits until the sparkedit client of `buf` is initialized (checked as "server attached");
--- returns it, or nil when it did not attach within `ms`.
function H.attached(buf, client_mod, ms)
  local client
  H.check("server attached", H.wait(function()
    client = client_mod.get(buf)
    return client and client.initialized
  end, ms or 20000))
  return client
end

--- Runs `body` in a coroutine; writes the results to `path`; gives up after `timeout_ms`.
function H.run(body, path, timeout_ms)
  H.results_path = path
  co = coroutine.create(body)
  vim.defer_fn(function()
    H.finish(("timed out after %d ms"):format(timeout_ms))
  end, timeout_ms)
  vim.schedule(resume)
end

return H

-- wrk script: the anonymous WS-Man Identify that Test-WSMan and
-- `winrm id` send (no Action header; body wsmid:Identify).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/soap+xml;charset=UTF-8"
wrk.headers["WSMANIDENTIFY"] = "unauthenticated"
wrk.body = '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" ' ..
    'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/' ..
    'wsmanidentity.xsd"><s:Header/><s:Body><wsmid:Identify/></s:Body>' ..
    '</s:Envelope>'

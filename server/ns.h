/* XML namespace URIs (matched by URI, never by prefix). */
#ifndef WRM_NS_H
#define WRM_NS_H

#define NS_SOAP		"http://www.w3.org/2003/05/soap-envelope"
#define NS_SOAP11	"http://schemas.xmlsoap.org/soap/envelope/"
#define NS_ADDR		"http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define NS_WSMAN	"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define NS_WSMV		"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
#define NS_SHELL	"http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
#define NS_TRANSFER	"http://schemas.xmlsoap.org/ws/2004/09/transfer"
#define NS_ENUM		"http://schemas.xmlsoap.org/ws/2004/09/enumeration"
#define NS_EVENTING	"http://schemas.xmlsoap.org/ws/2004/08/eventing"
#define NS_FAULT	"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
#define NS_CONFIG	"http://schemas.microsoft.com/wbem/wsman/1/config"
#define NS_IDENTITY	"http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
#define NS_IDENTIFY_TYPO "http://schemas.dmtf.org/wbem/wsman/identify/1/wsmanidentity.xsd"
#define NS_POWERSHELL	"http://schemas.microsoft.com/powershell"
#define NS_XSI		"http://www.w3.org/2001/XMLSchema-instance"
#define NS_CIMBINDING	"http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"
#define NS_WMIERROR	"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError"
#define NS_CIMCOMMON	"http://schemas.dmtf.org/wbem/wscim/1/common"

#define ADDR_ANONYMOUS	NS_ADDR "/role/anonymous"

#define A_TRANSFER	"http://schemas.xmlsoap.org/ws/2004/09/transfer/"
#define A_ENUM		"http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
#define A_SHELL		"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
#define A_FAULT_WSMAN	"http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
#define A_FAULT_ADDR	NS_ADDR "/fault"
#define A_FAULT_ENUM	A_ENUM "fault"

#define URI_SHELL_STATE	A_SHELL "CommandState/"
#define URI_SIGNAL	A_SHELL "signal/"
#define URI_SHELLS	"http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
#define URI_SHELL_COMMANDS URI_SHELLS "/Command"
#define URI_CONFIG	"http://schemas.microsoft.com/wbem/wsman/1/config"
#define URI_FAULT_DETAIL "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
#define URI_SECPROFILE	"http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/"

#endif

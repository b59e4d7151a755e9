"""Microsoft Graph: read the Entra tenant the bridge reconciles against.

Import the modules you need (client and source load msal and msgraph; settings does not).
"""
